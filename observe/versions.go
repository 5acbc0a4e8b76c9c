package observe

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/client-go/kubernetes"

	"rotator/catalog"
	"rotator/report"
)

// The gauges of the targets' current versions, set from the cluster.
const (
	// MetricVersionAge is how old each target's current version is.
	MetricVersionAge = "rotator_target_version_age_seconds"
	// MetricOverdue is 1 for a target whose current version is older than
	// its cadence and a day (report.Overdue), else 0.
	MetricOverdue = "rotator_target_overdue"
	// MetricWaitingForPerson is when a running rotation began to wait for
	// a person (keys to stage, an approval only a person can give, an
	// object retire waits for, a rollback to retry), 0 when none waits.
	MetricWaitingForPerson = "rotator_rotation_waiting_for_person_since_timestamp_seconds"
)

// WatchVersions sets MetricVersionAge and MetricOverdue from the cluster
// now and every period until ctx ends.
func (m *Metrics) WatchVersions(ctx context.Context, kube kubernetes.Interface, cat *catalog.Catalog, period time.Duration, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		m.SyncVersions(ctx, kube, cat, time.Now(), log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SyncVersions is one pass of WatchVersions. A target whose version cannot
// be read keeps its last values, and the failure is logged.
func (m *Metrics) SyncVersions(ctx context.Context, kube kubernetes.Interface, cat *catalog.Catalog, now time.Time, log *slog.Logger) {
	for _, t := range cat.Targets {
		v, err := report.Current(ctx, kube, t)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("could not read the current version; its age gauge is stale", "target", t.Name, "error", err)
			}
			continue
		}
		age := now.Sub(v.Created)
		overdue := 0.0
		if report.Overdue(t, age) {
			overdue = 1
		}
		h := m.temporal.WithTags(map[string]string{"target": t.Name, "kind": string(t.Kind)})
		h.Gauge(MetricVersionAge).Update(age.Seconds())
		h.Gauge(MetricOverdue).Update(overdue)
	}
}
