package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Readiness decides /readyz: ready once the worker polls its task queue
// and while Temporal answers a health check.
type Readiness struct {
	polling atomic.Bool
	// reachable asks Temporal whether it serves (client.CheckHealth).
	reachable func(context.Context) error
	timeout   time.Duration
}

// NewReadiness makes a Readiness that asks reachable, with a short
// timeout, on every probe; it starts not polling.
func NewReadiness(reachable func(context.Context) error) *Readiness {
	return &Readiness{reachable: reachable, timeout: 2 * time.Second}
}

// SetPolling records whether the worker is started: true once its pollers
// run, false as soon as it begins to stop.
func (r *Readiness) SetPolling(on bool) { r.polling.Store(on) }

// Check returns why the worker is not ready, or nil.
func (r *Readiness) Check(ctx context.Context) error {
	if !r.polling.Load() {
		return errors.New("worker is not polling its task queue")
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.reachable(ctx); err != nil {
		return fmt.Errorf("temporal is not reachable: %w", err)
	}
	return nil
}

// Mux routes /healthz, /readyz and /metrics.
func Mux(m *Metrics, r *Readiness, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	// Liveness only says the process serves: a Temporal outage must not
	// make Kubernetes restart every worker; readiness reports it instead.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		if err := r.Check(req.Context()); err != nil {
			log.Warn("not ready", "reason", err)
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", m.Handler())
	return mux
}

// Server is the worker's HTTP listener.
type Server struct {
	srv  *http.Server
	addr net.Addr
	done chan error
}

// Serve listens on addr (":8080", "127.0.0.1:0") and serves h in the
// background. Binding happens before it returns, so a port in use stops
// the worker at start-up rather than leaving it without probes.
func Serve(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (set --http-address or ROTATOR_HTTP_ADDRESS): %w", addr, err)
	}
	s := &Server{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		addr: ln.Addr(),
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else {
			log.Error("HTTP server stopped", "address", s.addr.String(), "error", err)
		}
		s.done <- err
	}()
	log.Info("serving health and metrics", "address", s.addr.String())
	return s, nil
}

// Addr is the address the server listens on, with the port it got.
func (s *Server) Addr() string { return s.addr.String() }

// Shutdown stops accepting connections and waits for requests in flight,
// up to ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop HTTP server: %w", err)
	}
	return <-s.done
}
