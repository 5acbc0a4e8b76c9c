package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"rotator/clients"
	"rotator/codec"
	"rotator/internal/leakscan"
)

// codecProbeResult carries the marker back in each of the ways it went in.
type codecProbeResult struct {
	Signal  string
	Echo    string
	Refusal string
}

// codecProbe is a test-only workflow: the marker travels as workflow input,
// in a signal, as activity input and result, in an activity's
// ApplicationError message, and in the workflow result.
func codecProbe(ctx workflow.Context, marker string) (codecProbeResult, error) {
	var r codecProbeResult
	workflow.GetSignalChannel(ctx, "probe").Receive(ctx, &r.Signal)
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	if err := workflow.ExecuteActivity(ctx, "CodecProbeEcho", marker).Get(ctx, &r.Echo); err != nil {
		return r, err
	}
	err := workflow.ExecuteActivity(ctx, "CodecProbeRefuse", marker).Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return r, fmt.Errorf("want the activity's ApplicationError, got %v", err)
	}
	// The worker decoded the failure's encrypted message to get this.
	r.Refusal = app.Message()
	return r, nil
}

// codecWorker generates a codec key (remembered for the run's leak scan),
// dials Temporal with it on a task queue of its own (prefix plus a random
// suffix), and starts a worker there with what register adds. The worker
// and the client close when the test ends.
func codecWorker(t *testing.T, prefix string, level slog.Level, register func(worker.Worker)) (codec.Key, *codec.Codec, clients.Temporal, client.Client) {
	t.Helper()
	key, err := codec.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := codec.New(key.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	devstack.remember(key.Secret)
	cfg := clients.TemporalFromEnv()
	cfg.TaskQueue = prefix + randomSuffix()
	cfg.Codec = ring
	tc, err := cfg.Dial(slog.New(slog.NewJSONHandler(devstack.logs, &slog.HandlerOptions{Level: level})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	w := worker.New(tc, cfg.TaskQueue, worker.Options{})
	register(w)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return key, ring, cfg, tc
}

func codecProbeEcho(_ context.Context, marker string) (string, error) { return "echo:" + marker, nil }

func codecProbeRefuse(_ context.Context, marker string) error {
	return temporal.NewNonRetryableApplicationError("refused: "+marker, "CodecProbe", nil)
}

// TestCodecEncryptsHistory runs a workflow through a client with a codec
// and reads its history with a client without one: the server holds only
// ciphertext, while the codec, and the codec server given the token, turn
// the same history back into the marker.
func TestCodecEncryptsHistory(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	token := randomHex(t, 24)
	// The token is a secret this run generated: the log scan at the end
	// of the run must not find it (codecWorker remembers the key).
	devstack.remember([]byte(token))
	marker := "codec-marker-" + randomHex(t, 12)

	key, ring, cfg, tc := codecWorker(t, "e2e-codec-", slog.LevelDebug, func(w worker.Worker) {
		w.RegisterWorkflowWithOptions(codecProbe, workflow.RegisterOptions{Name: "CodecProbe"})
		w.RegisterActivityWithOptions(codecProbeEcho, activity.RegisterOptions{Name: "CodecProbeEcho"})
		w.RegisterActivityWithOptions(codecProbeRefuse, activity.RegisterOptions{Name: "CodecProbeRefuse"})
	})

	id := "e2e-codec-probe-" + randomSuffix()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: cfg.TaskQueue, Memo: map[string]any{"probe": "memo:" + marker},
	}, "CodecProbe", marker)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.SignalWorkflow(ctx, id, run.GetRunID(), "probe", "signal:"+marker); err != nil {
		t.Fatal(err)
	}
	var res codecProbeResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("probe workflow: %v", err)
	}
	want := codecProbeResult{Signal: "signal:" + marker, Echo: "echo:" + marker, Refusal: "refused: " + marker}
	if res != want {
		t.Fatalf("through the codec client: %+v, want %+v", res, want)
	}

	// The history as the server stores it, read without any codec.
	plain, err := client.Dial(client.Options{
		HostPort: cfg.Address, Namespace: cfg.Namespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	h := &historypb.History{}
	it := plain.GetWorkflowHistory(ctx, id, run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	if n := countMarker(t, h, marker); n != 0 {
		t.Errorf("the stored history shows the marker %d times: payloads or failures are not encrypted", n)
	}
	encrypted, clear := 0, 0
	visit(t, ctx, h, func(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
		for _, p := range ps {
			if string(p.GetMetadata()[converter.MetadataEncoding]) == codec.EncodingEncrypted &&
				string(p.GetMetadata()[codec.MetadataKeyID]) == key.ID {
				encrypted++
			} else {
				clear++
			}
		}
		return ps, nil
	})
	// Input, memo, signal, two activity inputs, activity result, the
	// failure's attributes, workflow result.
	if encrypted < 8 || clear != 0 {
		t.Errorf("history payloads: %d encrypted with %s, %d not; want at least 8 and none", encrypted, key.ID, clear)
	}
	failures := 0
	for _, ev := range h.Events {
		if f := ev.GetActivityTaskFailedEventAttributes().GetFailure(); f != nil {
			failures++
			if f.GetEncodedAttributes() == nil || strings.Contains(f.GetMessage(), "refused") {
				t.Errorf("the activity failure's message is not encrypted: %q", f.GetMessage())
			}
		}
	}
	if failures != 1 {
		t.Errorf("want 1 ActivityTaskFailed event, found %d", failures)
	}

	// The same history through the codec: the marker in every place it went.
	decoded := proto.Clone(h).(*historypb.History)
	visit(t, ctx, decoded, ring.Decode)
	assertDecodedProbe(t, "the codec", decoded, marker)

	// And through the codec server, as the Web UI and CLI would read it.
	srv := httptest.NewServer(mustCodecServer(t, ring, token))
	defer srv.Close()
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: srv.URL + "/" + cfg.Namespace,
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+token)
			return nil
		},
	})
	viaServer := proto.Clone(h).(*historypb.History)
	visit(t, ctx, viaServer, remote.Decode)
	assertDecodedProbe(t, "the codec server", viaServer, marker)

	// Without the token the server decodes nothing.
	anonymous := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: srv.URL + "/" + cfg.Namespace})
	refused := proto.Clone(h).(*historypb.History)
	err = proxy.VisitPayloads(ctx, refused, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return anonymous.Decode(ps)
		},
	})
	if err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Errorf("the codec server decoded without a token: %v", err)
	}
	if n := countMarker(t, refused, marker); n != 0 {
		t.Error("a refused request decoded payloads")
	}
}

func mustCodecServer(t *testing.T, ring *codec.Codec, token string) http.Handler {
	t.Helper()
	h, err := codec.NewServer(ring, codec.ServerOptions{UIOrigin: "http://127.0.0.1:8233", Tokens: []string{token}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// visit runs f over every payload of the history except search
// attributes, which Temporal indexes and no codec touches.
func visit(t *testing.T, ctx context.Context, h *historypb.History, f func([]*commonpb.Payload) ([]*commonpb.Payload, error)) {
	t.Helper()
	err := proxy.VisitPayloads(ctx, h, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return f(ps)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// assertDecodedProbe checks that a decoded history carries the marker in
// each way the probe sent it; it also proves countMarker would have found
// a leak in the stored history.
func assertDecodedProbe(t *testing.T, via string, h *historypb.History, marker string) {
	t.Helper()
	raw, err := proto.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"` + marker + `"`, "memo:" + marker, "signal:" + marker, "echo:" + marker, "refused: " + marker} {
		if !bytes.Contains(raw, []byte(s)) {
			t.Errorf("the history decoded through %s lacks %q", via, s)
		}
	}
	if countMarker(t, h, marker) == 0 {
		t.Errorf("the scan does not find the marker in the history decoded through %s", via)
	}
}

// countMarker counts the marker's forms (secretForms) in the history.
func countMarker(t *testing.T, h *historypb.History, marker string) int {
	t.Helper()
	raw, js := historyBytes(t, h)
	n := 0
	for _, f := range leakscan.Forms([]byte(marker)) {
		n += bytes.Count(raw, f) + bytes.Count(js, f)
	}
	return n
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
