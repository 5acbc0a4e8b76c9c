package observe_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"rotator/observe"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	m, err := observe.NewMetrics(log)
	if err != nil {
		t.Fatal(err)
	}
	var temporalDown error
	ready := observe.NewReadiness(func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the health check must run with a timeout")
		}
		return temporalDown
	})
	srv, err := observe.Serve("127.0.0.1:0", observe.Mux(m, ready, log), log)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr()

	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q, want 200", code, body)
	}

	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not polling") {
		t.Errorf("/readyz before the worker starts = %d %q, want 503 saying it is not polling", code, body)
	}
	ready.SetPolling(true)
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz once polling = %d %q, want 200", code, body)
	}
	temporalDown = errors.New("connection refused")
	code, body = get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "temporal is not reachable: connection refused") {
		t.Errorf("/readyz with Temporal down = %d %q, want 503 with the reason", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with Temporal down = %d, want 200: liveness must not follow Temporal", code)
	}

	m.Temporal().WithTags(map[string]string{"kind": "jwt"}).Counter("rotator_test_events").Inc(2)
	m.Temporal().Gauge("rotator_test_level").Update(1.5)
	code, body = get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`rotator_test_events_total{kind="jwt"} 2`,
		"rotator_test_level 1.5",
		"go_goroutines ",
		"# TYPE rotator_test_events_total counter",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "otel_scope") || strings.Contains(body, "target_info") {
		t.Error("/metrics carries OpenTelemetry scope or target info")
	}

	if code, _ := get(t, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d, want 404", code)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still answers after Shutdown")
	}
}

func TestServeReportsPortInUse(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	srv, err := observe.Serve("127.0.0.1:0", http.NotFoundHandler(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if _, err := observe.Serve(srv.Addr(), http.NotFoundHandler(), log); err == nil || !strings.Contains(err.Error(), "ROTATOR_HTTP_ADDRESS") {
		t.Errorf("second Serve on %s = %v, want an error naming the setting", srv.Addr(), err)
	}
}
