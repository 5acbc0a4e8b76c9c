// Command worker runs rotator's Temporal worker: it loads the catalog,
// connects to Temporal and Kubernetes, and executes rotations until it
// receives SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"rotator/activities"
	"rotator/catalog"
	"rotator/clients"
	"rotator/observe"
	"rotator/workflows"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, os.Args[1:]); err != nil {
		log.Error("worker stopped", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, args []string) error {
	t := clients.TemporalFromEnv()
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	catalogPath := fs.String("catalog", envOr("ROTATOR_CATALOG", "rotator.yaml"), "catalog file (env ROTATOR_CATALOG)")
	t.Register(fs)
	fs.StringVar(&t.TaskQueue, "task-queue", t.TaskQueue, "task queue (env ROTATOR_TASK_QUEUE)")
	// client-go's default of 5 QPS, and even 50, made concurrent rotations
	// wait on the client's own rate limiter (make bench, scale).
	qps := fs.Float64("kube-qps", 200, "Kubernetes client requests per second")
	burst := fs.Int("kube-burst", 400, "Kubernetes client burst")
	// Zero keeps the SDK's defaults; make bench's scale runs use these to
	// find what limits many concurrent rotations.
	var opts worker.Options
	fs.IntVar(&opts.MaxConcurrentActivityExecutionSize, "max-concurrent-activities", 0, "activities run at once, rollout waits included (0: SDK default, 1000)")
	fs.IntVar(&opts.MaxConcurrentLocalActivityExecutionSize, "max-concurrent-local-activities", 0, "local activities (preflight, stage) run at once (0: SDK default, 1000)")
	fs.IntVar(&opts.MaxConcurrentWorkflowTaskExecutionSize, "max-concurrent-workflow-tasks", 0, "workflow tasks run at once (0: SDK default, 1000)")
	fs.IntVar(&opts.MaxConcurrentActivityTaskPollers, "activity-pollers", 0, "activity task pollers (0: SDK default, 2)")
	fs.IntVar(&opts.MaxConcurrentWorkflowTaskPollers, "workflow-pollers", 0, "workflow task pollers (0: SDK default, 2)")
	httpAddr := fs.String("http-address", envOr("ROTATOR_HTTP_ADDRESS", ":8080"),
		"address of /healthz, /readyz and /metrics (env ROTATOR_HTTP_ADDRESS)")
	graceRefresh := fs.Duration("grace-refresh", time.Minute, "how often the grace, waiting and version-age gauges are read back from Temporal and the cluster")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cat, err := catalog.Load(*catalogPath)
	if err != nil {
		return err
	}
	// A missing key file is said now, not at the first rotation's event.
	if err := activities.CheckNotify(cat); err != nil {
		return fmt.Errorf("catalog %s: %w", *catalogPath, err)
	}
	fingerprints, err := activities.LoadFingerprinter()
	if err != nil {
		return err
	}
	if !fingerprints.Keyed() {
		// Still keyed, so no fingerprint is an oracle; only their
		// stability across workers and restarts is lost.
		fingerprints = activities.RandomFingerprinter()
		log.Warn("fingerprints are keyed with a random key of this process: the same value gets another fingerprint from another worker or after a restart; set "+
			activities.EnvFingerprintKeyFile+" to a file of at least 32 random bytes that every worker reads", "env", activities.EnvFingerprintKeyFile)
	}
	kc, err := clients.Kube(float32(*qps), *burst)
	if err != nil {
		return err
	}
	deps := activities.Deps{Kube: kc, Catalog: cat, Fingerprints: fingerprints}
	if cat.UsesVault() || cat.Vault != nil {
		vc, stop, err := clients.Vault(context.Background(), cat.Vault, log)
		if err != nil {
			return err
		}
		defer stop()
		deps.Vault = vc
		log.Info("connected to Vault", "address", vc.Address())
	}
	// Caught from here on, so a SIGTERM during start-up still stops the
	// worker cleanly once it has started.
	stop, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	metrics, err := observe.NewMetrics(log)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := metrics.Shutdown(ctx); err != nil {
			log.Warn("metrics did not stop cleanly", "error", err)
		}
	}()
	if err := metrics.ExportCatalog(cat); err != nil {
		return err
	}
	t.MetricsHandler = metrics.Temporal()
	tc, err := t.Dial(log)
	if err != nil {
		return err
	}
	defer tc.Close()
	ready := observe.NewReadiness(func(ctx context.Context) error {
		_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	})
	srv, err := observe.Serve(*httpAddr, observe.Mux(metrics, ready, log), log)
	switch {
	case err != nil && explicit(fs, "http-address", "ROTATOR_HTTP_ADDRESS"):
		return err
	case err != nil:
		// The default port is taken when several workers share a host
		// (the demo's and a benchmark's); in a pod it is free, and were it
		// not, the failing probes would show it.
		log.Error("running without health and metrics endpoints", "error", err)
	default:
		// Runs after w.Stop below: probes and scrapes are answered while
		// the worker drains.
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				log.Warn("HTTP server did not stop cleanly", "error", err)
			}
		}()
	}

	fatal := make(chan error, 1)
	// In-flight steps get time to finish on SIGTERM; anything cut short is
	// retried by the next worker, since every step is idempotent.
	opts.WorkerStopTimeout = 20 * time.Second
	opts.OnFatalError = func(err error) {
		select {
		case fatal <- err:
		default:
		}
	}
	w := worker.New(tc, t.TaskQueue, opts)
	workflows.Register(w)
	deps.Temporal = tc
	activities.Register(w, deps)
	log.Info("worker starting", "namespace", t.NamespaceName(), "task_queue", t.TaskQueue,
		"catalog", *catalogPath, "targets", len(cat.Targets))
	// Start, not Run: readiness turns on only once the pollers run.
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	ready.SetPolling(true)
	go metrics.WatchGrace(stop, tc, cat, t.TaskQueue, *graceRefresh, log)
	go metrics.WatchVersions(stop, kc, cat, *graceRefresh, log)
	var runErr error
	select {
	case <-stop.Done():
		log.Info("worker stopping", "signal", context.Cause(stop))
	case err := <-fatal:
		runErr = fmt.Errorf("run worker: %w", err)
	}
	ready.SetPolling(false)
	w.Stop()
	if runErr != nil {
		return runErr
	}
	log.Info("worker stopped cleanly")
	return nil
}

// explicit says whether a setting was given by its flag or its
// environment variable rather than left at its default.
func explicit(fs *flag.FlagSet, name, env string) bool {
	if os.Getenv(env) != "" {
		return true
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
