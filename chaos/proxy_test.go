package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// gate holds the worker's Kubernetes requests that match, so that a kill
// lands while a chosen step is in flight rather than whenever the test
// happens to look. A request is held before it reaches the API server, or
// with after set, once the API server answered it (the change landed but
// the worker never hears of it).
type gate struct {
	name  string
	match func(*http.Request) bool
	after bool

	latch
	held    map[int]int   // requests held now, by proxy; under mu
	changed chan struct{} // closed and replaced whenever held changes
	// dead are the proxies of killed workers: what they still hold is
	// dropped when the gate opens. A killed worker's connection may not
	// have been seen to close yet, and its patch must not land then.
	dead map[int]bool
}

func newGate(name string, after bool, match func(*http.Request) bool) *gate {
	return &gate{name: name, after: after, match: match, held: map[int]int{}, changed: make(chan struct{}), dead: map[int]bool{}}
}

// forget marks a proxy's worker as killed.
func (g *gate) forget(proxy int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dead[proxy] = true
}

// latch is the arming shared by gate and dbProxy; mu also guards the
// fields of the type that embeds it.
type latch struct {
	mu      sync.Mutex
	armed   bool
	release chan struct{} // made by arm, closed by disarm; read only while armed
}

// arm makes the latch hold what matches from now on.
func (l *latch) arm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.armed {
		l.armed = true
		l.release = make(chan struct{})
	}
}

// disarm lets everything held go on and stops holding more.
func (l *latch) disarm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.armed {
		l.armed = false
		close(l.release)
	}
}

func (g *gate) notify() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// hold blocks a request of the proxy while the gate is armed. It returns
// false when the worker went away (its connection closed) first.
func (g *gate) hold(ctx context.Context, proxy int, r *http.Request) bool {
	g.mu.Lock()
	if !g.armed || !g.match(r) {
		g.mu.Unlock()
		return true
	}
	release := g.release
	g.held[proxy]++
	g.notify()
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.held[proxy]--
		g.notify()
		g.mu.Unlock()
	}()
	select {
	case <-release:
		g.mu.Lock()
		defer g.mu.Unlock()
		return !g.dead[proxy]
	case <-ctx.Done():
		return false
	}
}

// waitHeld blocks until the proxy's worker has a request held at the gate.
func (g *gate) waitHeld(ctx context.Context, proxy int) error {
	for {
		g.mu.Lock()
		n, ch := g.held[proxy], g.changed
		g.mu.Unlock()
		if n > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("gate %s: no request held: %w", g.name, ctx.Err())
		}
	}
}

// kubeProxy is one worker's way to the API server: plain HTTP on
// 127.0.0.1, forwarded with the devstack's client certificate. Closing it
// cuts the worker's connections, which releases what it held.
type kubeProxy struct {
	id         int
	srv        *http.Server
	kubeconfig string
}

// startKubeProxy serves a reverse proxy to cfg's API server that consults
// gates on every request, and writes a kubeconfig pointing at it.
func startKubeProxy(id int, cfg *rest.Config, dir string, gates []*gate) (*kubeProxy, error) {
	upstream, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("API server address %q: %w", cfg.Host, err)
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("transport to the API server: %w", err)
	}
	rp := httputil.NewSingleHostReverseProxy(upstream)
	rp.Transport = transport
	rp.FlushInterval = -1 // watches stream
	rp.ModifyResponse = func(resp *http.Response) error {
		for _, g := range gates {
			if g.after && !g.hold(resp.Request.Context(), id, resp.Request) {
				return errors.New("worker went away")
			}
		}
		return nil
	}
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, g := range gates {
			if !g.after && !g.hold(r.Context(), id, r) {
				return // the worker died with the request held: it never reaches the API server
			}
		}
		rp.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &kubeProxy{id: id, srv: &http.Server{Handler: handler}, kubeconfig: filepath.Join(dir, fmt.Sprintf("kubeconfig-%d", id))}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: proxy, cluster: {server: "http://%s"}}]
contexts: [{name: proxy, context: {cluster: proxy, user: proxy}}]
users: [{name: proxy, user: {}}]
current-context: proxy
`, ln.Addr())
	if err := os.WriteFile(p.kubeconfig, []byte(kc), 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *kubeProxy) close() { _ = p.srv.Close() }

// Request matchers for the steps the kill points hold.

func isList(r *http.Request, path string) bool {
	q := r.URL.Query()
	return r.Method == http.MethodGet && r.URL.Path == path && q.Get("watch") == "" && q.Get("fieldSelector") == ""
}

// deploymentsList matches listing every Deployment of the namespace, which
// VerifyConsumers and RetireSecret do and the rollout watch does not.
func deploymentsList(ns string) func(*http.Request) bool {
	return func(r *http.Request) bool { return isList(r, "/apis/apps/v1/namespaces/"+ns+"/deployments") }
}

// deploymentPatch matches Promote's repointing patch of a Deployment.
func deploymentPatch(ns string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/apis/apps/v1/namespaces/"+ns+"/deployments/")
	}
}

// secretCreate matches creating a Secret in the namespace.
func secretCreate(ns string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces/"+ns+"/secrets"
	}
}

// secretDelete matches deleting the named Secret.
func secretDelete(ns, name string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == http.MethodDelete && r.URL.Path == "/api/v1/namespaces/"+ns+"/secrets/"+name
	}
}

// dbProxy is the workers' way to a backing system (PostgreSQL, Redis): a
// TCP proxy the catalog names as the target's server. While armed it holds
// new connections.
type dbProxy struct {
	ln       net.Listener
	upstream string

	latch
	held    int // under mu
	changed chan struct{}
}

func startDBProxy(upstream string) (*dbProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &dbProxy{ln: ln, upstream: upstream, changed: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p, nil
}

func (p *dbProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// addr is host:port of the proxy, on 127.0.0.1.
func (p *dbProxy) addr() string { return p.ln.Addr().String() }

func (p *dbProxy) close() { p.ln.Close() }

func (p *dbProxy) addHeld(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held += n
	close(p.changed)
	p.changed = make(chan struct{})
}

// waitHeld blocks until a connection is held.
func (p *dbProxy) waitHeld(ctx context.Context) error {
	for {
		p.mu.Lock()
		n, ch := p.held, p.changed
		p.mu.Unlock()
		if n > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("database proxy: no connection held: %w", ctx.Err())
		}
	}
}

func (p *dbProxy) serve(c net.Conn) {
	defer c.Close()
	p.mu.Lock()
	armed, release := p.armed, p.release
	p.mu.Unlock()
	if armed {
		// Nothing of a held connection reaches PostgreSQL. It is dropped
		// when its worker goes away, or when the gate opens (by then the
		// test killed that worker; a live one would retry).
		p.addHeld(1)
		defer p.addHeld(-1)
		gone := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, c)
			close(gone)
		}()
		select {
		case <-gone:
		case <-release:
		}
		return
	}
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}
