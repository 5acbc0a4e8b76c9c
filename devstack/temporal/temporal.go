// Package temporal runs a real Temporal server, backed by a SQLite file, and
// its Web UI inside the devstack process, the way `temporal server start-dev`
// does, so that the local stack needs neither Docker nor a Temporal binary.
package temporal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/temporal"
)

// Options configures the embedded server.
type Options struct {
	// DBFile is the SQLite file holding both the main and the visibility
	// store; it is created (with its directory) if absent, and reused as is
	// otherwise, so workflows survive a restart. Required.
	DBFile string
	// IP is the address every listener binds to; default "127.0.0.1".
	IP string
	// FrontendPort is the gRPC port clients dial; default 7233. The history,
	// matching and worker services take FrontendPort+1, +2 and +3.
	FrontendPort int
	// HTTPPort is the frontend's HTTP API port (e.g. 7243); 0 disables it.
	HTTPPort int
	// UIPort is the Web UI's port (e.g. 8233); 0 runs without the UI.
	UIPort int
	// MetricsPort serves Prometheus metrics on IP; 0 disables them.
	MetricsPort int
	// Namespace is registered if absent, with a 7-day retention; default
	// "default".
	Namespace string
	// SearchAttributes maps custom search attribute names to their types
	// ("Keyword", "Text", "Int", "Double", "Bool", "Datetime",
	// "KeywordList"); missing ones are added on every start.
	SearchAttributes map[string]string
	// ReadyFile, if set, is written with "ok\n" once the server accepts
	// requests and the namespace and search attributes are usable, and is
	// removed on shutdown.
	ReadyFile string
	// TLS serves the frontend over TLS or mutual TLS; nil serves plain
	// gRPC to anyone who can reach the port.
	TLS *TLS
	// APIKeysFile, when set, makes every caller but the server's own
	// system worker present one of the file's keys as
	// "Authorization: Bearer <key>", as Temporal Cloud requires; it needs
	// TLS, since the key travels in a header.
	APIKeysFile string
	// Logger receives the server's warnings and errors; nil discards them.
	Logger *slog.Logger
}

const (
	defaultIP           = "127.0.0.1"
	defaultFrontendPort = 7233
	defaultNamespace    = "default"
	namespaceRetention  = 7 * 24 * time.Hour
	// clusterName is the one cluster this server is; it is stored in the
	// database, so it must not change between releases of devstack.
	clusterName = "active"
	// startupTimeout bounds the wait for the namespace and search attributes
	// to become usable; on this 2-core machine a cold start takes seconds.
	startupTimeout = 2 * time.Minute
)

// Run starts the server and the UI and blocks until ctx is cancelled, then
// stops both cleanly. It returns nil after a cancellation, including one
// that arrives while the server is still starting.
func Run(ctx context.Context, o Options) error {
	o, sas, err := o.normalize()
	if err != nil {
		return err
	}
	if o.ReadyFile != "" {
		// A file left by a killed run would announce a server that is not up.
		if err := os.Remove(o.ReadyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("temporal: removing stale ready file: %w", err)
		}
	}
	if err := o.checkPorts(); err != nil {
		return err
	}
	logger := newServerLogger(o.Logger)
	if o.ReadyFile != "" {
		logger.beforeExit = func() { _ = os.Remove(o.ReadyFile) }
	}

	sqlCfg, err := prepareDatabase(o, sas)
	if err != nil {
		return err
	}
	dc, endForcedRefresh := dynamicConfig()
	srvOpts, err := serverOptions(o, sqlCfg, logger, dc)
	if err != nil {
		return err
	}
	srv, err := temporal.NewServer(srvOpts...)
	if err != nil {
		return fmt.Errorf("temporal: creating server: %w", err)
	}

	var ui *uiserver.Server
	if o.UIPort != 0 {
		ui = newUIServer(o)
	}

	if err := srv.Start(); err != nil {
		// Some services may be up already; they hold ports until stopped.
		_ = srv.Stop()
		return fmt.Errorf("temporal: starting server: %w", err)
	}
	defer func() {
		logger.stopping.Store(true)
		_ = srv.Stop()
	}()

	if ui != nil {
		go func() { _ = ui.Start() }()
		defer ui.Stop()
	}

	added, err := bootstrap(ctx, o, sas)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// Caches loaded before the attributes were added have expired a
	// minute after; with none added this start, every cache has them.
	if added.IsZero() {
		endForcedRefresh()
	} else {
		t := time.AfterFunc(time.Until(added.Add(saCacheRefresh)), endForcedRefresh)
		defer t.Stop()
	}

	if o.ReadyFile != "" {
		if err := writeFileAtomic(o.ReadyFile, []byte("ok\n")); err != nil {
			return fmt.Errorf("temporal: writing ready file: %w", err)
		}
		// Removed before the services stop, so nobody dials a stopping server.
		defer func() { _ = os.Remove(o.ReadyFile) }()
	}

	<-ctx.Done()
	return nil
}

// normalize fills defaults and parses the search attribute types up front, so
// that a typo fails before a database file is created.
func (o Options) normalize() (Options, map[string]enumspb.IndexedValueType, error) {
	if o.DBFile == "" {
		return o, nil, errors.New("temporal: Options.DBFile is required")
	}
	if o.IP == "" {
		o.IP = defaultIP
	}
	if net.ParseIP(o.IP) == nil {
		// The server binds to an IP, not a host name.
		return o, nil, fmt.Errorf("temporal: Options.IP %q is not an IP address", o.IP)
	}
	if o.FrontendPort == 0 {
		o.FrontendPort = defaultFrontendPort
	}
	if o.Namespace == "" {
		o.Namespace = defaultNamespace
	}
	if t := o.TLS; t != nil {
		if t.CertFile == "" || t.KeyFile == "" || t.ServerCAFile == "" || t.SystemWorkerCertFile == "" || t.SystemWorkerKeyFile == "" {
			return o, nil, errors.New("temporal: Options.TLS needs CertFile, KeyFile, ServerCAFile, SystemWorkerCertFile and SystemWorkerKeyFile")
		}
		if t.ServerName == "" {
			t2 := *t
			t2.ServerName = "localhost"
			o.TLS = &t2
		}
	}
	if o.APIKeysFile != "" && o.TLS == nil {
		return o, nil, errors.New("temporal: Options.APIKeysFile needs Options.TLS: API keys travel in a header, which plain gRPC sends in clear text")
	}
	sas := make(map[string]enumspb.IndexedValueType, len(o.SearchAttributes))
	for name, typ := range o.SearchAttributes {
		t, err := enumspb.IndexedValueTypeFromString(typ)
		if err != nil || t == enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED {
			return o, nil, fmt.Errorf("temporal: search attribute %q: unknown type %q", name, typ)
		}
		sas[name] = t
	}
	return o, sas, nil
}

func (o Options) frontendAddr() string {
	return net.JoinHostPort(o.IP, strconv.Itoa(o.FrontendPort))
}

// checkPorts fails early, with a message naming the port, where the server
// would otherwise exit the process: both the Temporal services and the UI
// server treat a port they cannot bind as fatal.
func (o Options) checkPorts() error {
	type use struct {
		port int
		what string
	}
	uses := []use{{o.HTTPPort, "frontend HTTP"}, {o.UIPort, "UI"}, {o.MetricsPort, "metrics"}}
	for svc, port := range o.servicePorts() {
		uses = append(uses, use{port, string(svc)})
	}
	seen := map[int]string{}
	for _, u := range uses {
		if u.port == 0 {
			continue
		}
		if other, ok := seen[u.port]; ok {
			return fmt.Errorf("temporal: port %d is set for both %s and %s", u.port, other, u.what)
		}
		seen[u.port] = u.what
		l, err := net.Listen("tcp", net.JoinHostPort(o.IP, strconv.Itoa(u.port)))
		if err != nil {
			return fmt.Errorf("temporal: %s port: %w", u.what, err)
		}
		_ = l.Close()
	}
	return nil
}

// writeFileAtomic renames a finished temporary file into place, so that a
// watcher polling for the file never reads it half written.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
