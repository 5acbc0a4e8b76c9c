package observe

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"rotator/catalog"
)

// MetricInterval is how often each catalog target should rotate, so that
// an alert can compare a target's last success with its own cadence
// instead of one threshold for every kind.
const MetricInterval = "rotator_target_rotation_interval_seconds"

// MetricGrace is each target's grace period: a rotation succeeds only
// when grace ends, so a success is due interval plus grace after the last.
const MetricGrace = "rotator_target_grace_seconds"

// ExportCatalog publishes MetricInterval and MetricGrace for every
// target. The interval is the target's every for jwt, postgres and
// apikeys; for tls it is ttl less renewBefore, since the scan renews a
// certificate once it is within renewBefore of expiry.
func (m *Metrics) ExportCatalog(cat *catalog.Catalog) error {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricInterval,
		Help: "How often the target should rotate, from the catalog.",
	}, []string{"target", "kind"})
	grace := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricGrace,
		Help: "How long the target's previous version stays valid after promote, from the catalog.",
	}, []string{"target", "kind"})
	for _, t := range cat.Targets {
		grace.WithLabelValues(t.Name, string(t.Kind)).Set(t.Grace.Seconds())
		every := t.Every.Duration
		if t.Kind == catalog.KindTLS && t.TLS != nil {
			every = t.TLS.TTL.Duration - t.TLS.RenewBefore.Duration
		}
		if every <= 0 {
			continue
		}
		g.WithLabelValues(t.Name, string(t.Kind)).Set(every.Seconds())
	}
	for _, c := range []prometheus.Collector{g, grace} {
		if err := m.reg.Register(c); err != nil {
			return fmt.Errorf("register catalog metrics: %w", err)
		}
	}
	return nil
}
