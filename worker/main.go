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
	"time"

	"go.temporal.io/sdk/worker"

	"rotator/activities"
	"rotator/catalog"
	"rotator/clients"
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
	fs.StringVar(&t.Address, "temporal-address", t.Address, "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	fs.StringVar(&t.Namespace, "namespace", t.Namespace, "Temporal namespace (env TEMPORAL_NAMESPACE)")
	fs.StringVar(&t.TaskQueue, "task-queue", t.TaskQueue, "task queue (env ROTATOR_TASK_QUEUE)")
	// client-go's default of 5 QPS, and even 50, made concurrent rotations
	// wait on the client's own rate limiter (make bench, scale).
	qps := fs.Float64("kube-qps", 200, "Kubernetes client requests per second")
	burst := fs.Int("kube-burst", 400, "Kubernetes client burst")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cat, err := catalog.Load(*catalogPath)
	if err != nil {
		return err
	}
	kc, err := clients.Kube(float32(*qps), *burst)
	if err != nil {
		return err
	}
	deps := activities.Deps{Kube: kc, Catalog: cat}
	if cat.UsesVault() || cat.Vault != nil {
		vc, stop, err := clients.Vault(context.Background(), cat.Vault, log)
		if err != nil {
			return err
		}
		defer stop()
		deps.Vault = vc
		log.Info("connected to Vault", "address", vc.Address())
	}
	tc, err := t.Dial(log)
	if err != nil {
		return err
	}
	defer tc.Close()

	w := worker.New(tc, t.TaskQueue, worker.Options{
		// In-flight steps get time to finish on SIGTERM; anything cut
		// short is retried by the next worker, since every step is
		// idempotent.
		WorkerStopTimeout: 20 * time.Second,
	})
	workflows.Register(w)
	activities.Register(w, deps)
	log.Info("worker starting", "temporal", t.Address, "namespace", t.Namespace, "task_queue", t.TaskQueue,
		"catalog", *catalogPath, "targets", len(cat.Targets))
	if err := w.Run(worker.InterruptCh()); err != nil {
		return fmt.Errorf("run worker: %w", err)
	}
	log.Info("worker stopped cleanly")
	return nil
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
