package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"path/filepath"

	"rotator/devstack/temporal"
)

// rotationSearchAttributes are the custom search attributes rotator's
// workflows set; the server registers them on every start.
func rotationSearchAttributes() map[string]string {
	return map[string]string{
		"RotationTarget": "Keyword",
		"RotationKind":   "Keyword",
		"RotationStep":   "Keyword",
	}
}

// runTemporal runs the embedded Temporal server and UI in the foreground
// until ctx ends (SIGINT or SIGTERM).
func runTemporal(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("devstack temporal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", filepath.Join(".devstack", "temporal.db"), "SQLite database file (created if absent)")
	ip := fs.String("ip", "127.0.0.1", "IP address every listener binds to")
	frontend := fs.Int("frontend-port", temporalFrontendPort, "frontend gRPC port; history, matching and worker take the next three")
	httpPort := fs.Int("http-port", temporalHTTPPort, "frontend HTTP API port (0 disables it)")
	uiPort := fs.Int("ui-port", temporalUIPort, "Web UI port (0 disables the UI)")
	metricsPort := fs.Int("metrics-port", 0, "Prometheus metrics port (0 disables metrics)")
	namespace := fs.String("namespace", "default", "namespace registered at start")
	readyFile := fs.String("ready-file", "", "file written once the server is usable, removed at shutdown")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	var t temporal.TLS
	fs.StringVar(&t.CertFile, "tls-cert", "", "frontend certificate (PEM); serves TLS when set, e.g. .devstack/pki/temporal.crt")
	fs.StringVar(&t.KeyFile, "tls-key", "", "frontend certificate's key")
	fs.StringVar(&t.ServerCAFile, "tls-ca", "", "CA of the frontend certificate, for the server's own clients, e.g. .devstack/pki/services-ca.crt")
	fs.StringVar(&t.ServerName, "tls-server-name", "localhost", "name in the frontend certificate")
	fs.StringVar(&t.ClientCAFile, "tls-client-ca", "", "require client certificates from this CA (mutual TLS)")
	fs.StringVar(&t.SystemWorkerCertFile, "system-worker-cert", "", "certificate of the server's own clients (common name "+temporal.SystemWorkerName+")")
	fs.StringVar(&t.SystemWorkerKeyFile, "system-worker-key", "", "its key")
	apiKeys := fs.String("api-keys-file", "", "require an API key from this file (one per line) from every client; needs --tls-cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("temporal: unexpected arguments")
	}
	var tlsOpts *temporal.TLS
	if t != (temporal.TLS{ServerName: "localhost"}) {
		tlsOpts = &t
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	logger.Info("starting Temporal", "db", *db, "frontend", *frontend, "ui", *uiPort,
		"tls", tlsOpts != nil, "mtls", t.ClientCAFile != "", "api_keys", *apiKeys != "")
	err := temporal.Run(ctx, temporal.Options{
		DBFile:           *db,
		IP:               *ip,
		FrontendPort:     *frontend,
		HTTPPort:         *httpPort,
		UIPort:           *uiPort,
		MetricsPort:      *metricsPort,
		Namespace:        *namespace,
		SearchAttributes: rotationSearchAttributes(),
		ReadyFile:        *readyFile,
		TLS:              tlsOpts,
		APIKeysFile:      *apiKeys,
		Logger:           logger,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("Temporal stopped")
	return nil
}
