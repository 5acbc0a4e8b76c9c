package chaos

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"rotator/internal/leakscan"
)

// hookReceiver is a webhook receiver on a local port that checks each
// POST's signature as docs/notifications.md tells receivers to, and keeps
// the deliveries.
type hookReceiver struct {
	t       *testing.T
	srv     *httptest.Server
	key     []byte
	keyFile string

	mu     sync.Mutex
	events map[string]string // delivery id -> event
	order  []string          // delivery ids, first arrival
	posts  int
	bodies [][]byte
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{t: t, key: make([]byte, 32), events: map[string]string{}}
	_, _ = rand.Read(r.key)
	r.keyFile = filepath.Join(t.TempDir(), "webhook-key")
	if err := os.WriteFile(r.keyFile, r.key, 0o600); err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ts := req.Header.Get("X-Rotator-Timestamp")
		mac := hmac.New(sha256.New, r.key)
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || !hmac.Equal([]byte(req.Header.Get("X-Rotator-Signature")), []byte("v1="+hex.EncodeToString(mac.Sum(nil)))) ||
			time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
			t.Errorf("a notification with a bad signature or timestamp: %s", body)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var n struct{ ID, Event string }
		if err := json.Unmarshal(body, &n); err != nil || n.ID == "" {
			t.Errorf("a notification without an id: %s", body)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.posts++
		r.bodies = append(r.bodies, body)
		if prev, ok := r.events[n.ID]; ok && prev != n.Event {
			t.Errorf("delivery %s came as %s and as %s", n.ID, prev, n.Event)
		}
		if _, ok := r.events[n.ID]; !ok {
			r.order = append(r.order, n.ID)
		}
		r.events[n.ID] = n.Event
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// sinkYAML is the target's notify section for the receiver.
func (r *hookReceiver) sinkYAML() string {
	return "    notify: [{name: hooks, webhook: {url: '" + r.srv.URL + "/hook', signingKeyFile: " + r.keyFile + "}}]\n"
}

// assertOncePerStep checks that the rotation's events arrived, each under
// one delivery id, in order, whatever the kills made the workers send
// again (a repeat carries the same id, for the receiver to drop), and that
// no secret value is in a body.
func (r *hookReceiver) assertOncePerStep(want []string, secrets ...[]byte) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var got []string
	for _, id := range r.order {
		got = append(got, r.events[id])
	}
	if !slices.Equal(got, want) {
		r.t.Errorf("notifications by delivery id: %v, want %v, each once", got, want)
	}
	r.t.Logf("notifications: %d events in %d POSTs (%d repeats after kills, dropped by id)", len(r.order), r.posts, r.posts-len(r.order))
	all := bytes.Join(r.bodies, []byte("\n"))
	for _, v := range secrets {
		for _, form := range leakscan.Forms(v) {
			if bytes.Contains(all, form) {
				r.t.Error("a secret value is in a notification")
			}
		}
	}
}
