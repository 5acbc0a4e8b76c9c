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
	"os"
	"os/exec"
	"os/signal"
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
	if err := run(ctx, log, *runs, sizes, *out); err != nil {
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

func run(ctx context.Context, log *slog.Logger, runs int, sizes []int, out string) error {
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
	jwt, err := e.benchJWT(ctx, runs)
	if err != nil {
		return err
	}
	logins, err := e.benchLogins(ctx, runs)
	if err != nil {
		return err
	}
	unit, err := benchUnitSuite(ctx, runs)
	if err != nil {
		return err
	}
	scaled, err := e.benchScale(ctx, sizes)
	if err != nil {
		return err
	}
	return writeReport(out, report{date: started, runs: runs, jwt: jwt, logins: logins, unitSuite: unit, scale: scaled})
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
