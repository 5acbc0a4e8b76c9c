// Package observe serves what an operator watches the worker through:
// liveness, readiness and Prometheus metrics, the Temporal SDK's and the
// rotations' own, over one HTTP listener.
package observe

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// latencyBuckets are the histogram bounds, in seconds, of the SDK's
// timers (request, poll, activity and workflow latencies). OpenTelemetry's
// default bounds (0 to 10000) suit milliseconds and would put every
// request below 5s into one bucket.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// Metrics is the worker's metric registry: the Temporal client records
// into Handler, and Handler serves the Prometheus text format.
type Metrics struct {
	reg      *prometheus.Registry
	provider *sdkmetric.MeterProvider
	temporal client.MetricsHandler
}

// NewMetrics makes a registry with Go runtime and process metrics and an
// OpenTelemetry meter exported to it; errors from the meter are logged.
func NewMetrics(log *slog.Logger) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("register Go metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("register process metrics: %w", err)
	}
	// Scope and target info would add an otel_scope_* label to every
	// series and a target_info series that only say "rotator".
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("create Prometheus exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithView(sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: latencyBuckets}},
	)))
	h := temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter: provider.Meter("rotator"),
		// Monotonic counters are exported as Prometheus counters (with
		// _total), which rate() and increase() expect.
		UseMonotonicCounters: true,
		// The default panics; a metric is never worth a crashed worker.
		OnError: func(err error) { log.Warn("metric not recorded", "error", err) },
	})
	return &Metrics{reg: reg, provider: provider, temporal: h}, nil
}

// Temporal is the handler to give the Temporal client (clients.Temporal's
// MetricsHandler); workflows reach it through workflow.GetMetricsHandler.
func (m *Metrics) Temporal() client.MetricsHandler { return m.temporal }

// Gatherer reads the current metrics, for tests that assert on them.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Shutdown stops the meter provider.
func (m *Metrics) Shutdown(ctx context.Context) error {
	if err := m.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop meter provider: %w", err)
	}
	return nil
}

// Value returns the value of the gauge or counter series called name
// whose labels include labels, from g; ok is false when there is none.
// Tests and tools use it to read what a scrape would show.
func Value(g prometheus.Gatherer, name string, labels map[string]string) (v float64, ok bool, err error) {
	families, err := g.Gather()
	if err != nil {
		return 0, false, fmt.Errorf("gather metrics: %w", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true, nil
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true, nil
			default:
				return 0, false, fmt.Errorf("metric %s is a %s, not a gauge or counter", name, f.GetType())
			}
		}
	}
	return 0, false, nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(want)
}
