// Command bench measures rotator against the runbook on the devstack and
// writes docs/benchmarks.md. It is run by `make bench`, never by the tests:
// figures come from real rollouts on a shared machine and vary run to run,
// so they are reported (median, min, max), not asserted.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"k8s.io/client-go/kubernetes"

	"rotator/clients"
)

func main() {
	runs := flag.Int("runs", 3, "runs of each procedure")
	scale := flag.String("scale", "10,100", "comma-separated numbers of concurrent rotations for the scale benchmark")
	out := flag.String("out", "docs/benchmarks.md", "report file")
	workerFlags := flag.String("worker-flags", "", "space-separated flags for bin/worker in the scale benchmark, e.g. \"--workflow-pollers 8\"")
	clusterUpTo := flag.Int("cluster-baseline-up-to", 100, "largest N whose rollouts are also timed without rotator (each is N more rollouts)")
	only := flag.String("only", "", "comma-separated sections to run (jwt, logins, unit, scale); empty runs all and writes the report, else figures are only logged")
	flag.BoolVar(&trace, "trace", false, "log every Kubernetes request of rotator's JWT rotation (method and path) and its history's event times")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var sizes []int
	for _, f := range strings.Split(*scale, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Error("-scale: want positive numbers such as 10,100,1000", "got", *scale)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	sections := map[string]bool{}
	for _, f := range strings.Split(*only, ",") {
		if f = strings.TrimSpace(f); f != "" {
			sections[f] = true
		}
	}
	so := scaleOptions{workerFlags: strings.Fields(*workerFlags), clusterUpTo: *clusterUpTo}
	if err := run(ctx, log, *runs, sizes, so, *out, sections); err != nil {
		log.Error("bench failed", "error", err)
		os.Exit(1)
	}
}

// env is what every benchmark uses: the devstack's clients and tools.
type env struct {
	log      *slog.Logger
	kube     kubernetes.Interface
	temporal client.Client
	kubectl  string
	superPW  string
}

// trace makes the JWT benchmark log each request it counts and the
// rotation's history with times, to see where requests and time go.
var trace bool

func run(ctx context.Context, log *slog.Logger, runs int, sizes []int, so scaleOptions, out string, only map[string]bool) error {
	if os.Getenv("ROTATOR_DEVSTACK") == "" {
		return fmt.Errorf("the devstack is not up: run `make bench` (it starts it)")
	}
	kc, err := clients.Kube(50, 100)
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	tc, err := clients.TemporalFromEnv().Dial(quiet)
	if err != nil {
		return err
	}
	defer tc.Close()
	pw, err := os.ReadFile(os.Getenv("ROTATOR_PG_SUPERUSER_PASSWORD_FILE"))
	if err != nil {
		return fmt.Errorf("devstack superuser password: %w", err)
	}
	e := &env{log: log, kube: kc, temporal: tc, kubectl: os.Getenv("KUBECTL"), superPW: string(pw)}

	started := time.Now()
	want := func(section string) bool { return len(only) == 0 || only[section] }
	var r report
	if want("jwt") {
		for _, delay := range []time.Duration{0, slowReady} {
			set := jwtSet{readyDelay: delay}
			if set.runs, err = e.benchJWT(ctx, runs, delay); err != nil {
				return err
			}
			r.jwt = append(r.jwt, set)
		}
	}
	if want("logins") {
		if r.logins, err = e.benchLogins(ctx, runs); err != nil {
			return err
		}
	}
	if want("unit") {
		if r.unitSuite, err = benchUnitSuite(ctx, runs); err != nil {
			return err
		}
	}
	if want("scale") {
		if r.scale, err = e.benchScale(ctx, sizes, so); err != nil {
			return err
		}
	}
	if len(only) > 0 {
		log.Info("partial run: report not written", "sections", strings.Join(slices.Sorted(maps.Keys(only)), ","))
		return nil
	}
	r.date, r.runs, r.workerFlags = started, runs, so.workerFlags
	return writeReport(out, r)
}

// benchUnitSuite times the workflow unit tests, whose 7-day grace periods
// run under the test suite's time skipping.
func benchUnitSuite(ctx context.Context, runs int) ([]time.Duration, error) {
	var out []time.Duration
	for range runs {
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "./workflows/...")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go test ./workflows/...: %v: %s", err, b)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}
