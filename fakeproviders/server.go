package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"rotator/providers/providertest"
)

// config is what serve needs.
type config struct {
	dir                       string
	openAIAddr, anthropicAddr string
	projectID                 string
}

// The files in the state folder.
const (
	stateFile   = "state.json"
	currentFile = "current-keys"
	newKeysFile = "new-keys"
	controlSock = "control.sock"
)

// provider is one stand-in and its admin key.
type provider struct {
	name   string // openai or anthropic, as in rotator.yaml
	srv    *providertest.Server
	admin  string
	newKey func() string
}

// state is what state.json holds, per provider name.
type state map[string]providerState

type providerState struct {
	Admin string             `json:"admin"`
	Keys  []providertest.Key `json:"keys"`
}

// stand is the two stand-ins and their state folder.
type stand struct {
	dir       string
	log       *slog.Logger
	providers []*provider
	mu        sync.Mutex // serialises saves and mints
	saved     state
}

// serve runs both stand-ins until ctx ends, saving their keys on every
// mint, every few seconds when a key changed (a revocation), and on exit.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.dir, 0o700); err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	st := &stand{dir: cfg.dir, log: log}
	for _, p := range []struct {
		name, addr string
		start      func(net.Listener) *providertest.Server
		key        func() string
		admin      func() string
	}{
		{"openai", cfg.openAIAddr,
			func(l net.Listener) *providertest.Server {
				return providertest.NewOpenAI(providertest.WithListener(l), providertest.WithProjectID(cfg.projectID))
			},
			func() string { return "sk-proj-" + randomKey(48) },
			func() string { return "sk-admin-" + randomKey(48) }},
		{"anthropic", cfg.anthropicAddr,
			func(l net.Listener) *providertest.Server {
				return providertest.NewAnthropic(providertest.WithListener(l))
			},
			func() string { return "sk-ant-api03-" + randomKey(93) + "AA" },
			func() string { return "sk-ant-admin01-" + randomKey(93) + "AA" }},
	} {
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("%s stand-in: %w (is another fakeproviders running? `scripts/demo.sh down` stops the demo's)", p.name, err)
		}
		srv := p.start(l)
		defer srv.Close()
		st.providers = append(st.providers, &provider{name: p.name, srv: srv, admin: p.admin(), newKey: p.key})
	}
	if err := st.load(); err != nil {
		return err
	}

	sock := filepath.Join(cfg.dir, controlSock)
	_ = os.Remove(sock) // left by a process that was killed
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mint", func(w http.ResponseWriter, _ *http.Request) {
		if err := st.mint(); err != nil {
			log.Error("mint failed", "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, filepath.Join(cfg.dir, newKeysFile))
	})
	ctl := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = ctl.Serve(l) }()
	defer ctl.Close()

	for _, p := range st.providers {
		log.Info("stand-in up", "provider", p.name, "url", p.srv.URL, "project", p.srv.ProjectID(), "keys", len(p.srv.Keys()))
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			return st.save()
		case <-tick.C:
			if err := st.save(); err != nil {
				log.Error("save state", "err", err)
			}
		}
	}
}

// load restores the saved keys, or on the first start creates the
// application's current keys and the admin keys and writes their files.
func (st *stand) load() error {
	raw, err := os.ReadFile(filepath.Join(st.dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st.seed()
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	var s state
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("state %s: %w (delete the folder to start over)", filepath.Join(st.dir, stateFile), err)
	}
	for _, p := range st.providers {
		ps := s[p.name]
		if ps.Admin == "" {
			return fmt.Errorf("state %s: no admin key for %s (delete the folder to start over)", filepath.Join(st.dir, stateFile), p.name)
		}
		p.admin = ps.Admin
		p.srv.AddAdminKey(p.admin)
		for _, k := range ps.Keys {
			p.srv.RestoreKey(k)
		}
	}
	st.saved = s
	return nil
}

// seed creates one current key and one admin key per provider.
func (st *stand) seed() error {
	var current []string
	for _, p := range st.providers {
		p.srv.AddAdminKey(p.admin)
		v := p.newKey()
		p.srv.AddKeyNamed(v, "orchestrator (before rotator)")
		current = append(current, p.name+"-api-key="+v)
		if err := writeSecretFile(filepath.Join(st.dir, p.name+"-admin"), "admin-key="+p.admin+"\n"); err != nil {
			return err
		}
	}
	if err := writeSecretFile(filepath.Join(st.dir, currentFile), strings.Join(current, "\n")+"\n"); err != nil {
		return err
	}
	st.log.Info("created the application's keys and the admin keys", "files", []string{currentFile, "openai-admin", "anthropic-admin"})
	return st.save()
}

// mint creates one new key per provider, as an engineer does in each
// console, and writes them to new-keys for `starter stage-keys`.
func (st *stand) mint() error {
	st.mu.Lock()
	var lines []string
	for _, p := range st.providers {
		v := p.newKey()
		id := p.srv.AddKeyNamed(v, "orchestrator "+time.Now().UTC().Format("2006-01-02 15:04:05"))
		lines = append(lines, p.name+"-api-key="+v)
		st.log.Info("minted a key", "provider", p.name, "id", id)
	}
	st.mu.Unlock()
	if err := writeSecretFile(filepath.Join(st.dir, newKeysFile), strings.Join(lines, "\n")+"\n"); err != nil {
		return err
	}
	return st.save()
}

// save writes state.json when the keys changed since the last save.
func (st *stand) save() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := state{}
	for _, p := range st.providers {
		s[p.name] = providerState{Admin: p.admin, Keys: p.srv.Keys()}
	}
	if reflect.DeepEqual(s, st.saved) {
		return nil
	}
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := writeSecretFile(filepath.Join(st.dir, stateFile), string(raw)); err != nil {
		return err
	}
	st.saved = s
	return nil
}

// writeSecretFile replaces path atomically with a file only the owner can
// read.
func writeSecretFile(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.WriteString(tmp, content); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

// randomKey returns n random characters of the alphabet provider keys use.
func randomKey(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		b[i] = keyAlphabet[int(b[i])%len(keyAlphabet)]
	}
	return string(b)
}

// mint asks the running serve to mint keys, through its control socket,
// and prints the file they are in.
func mint(ctx context.Context, dir string, out io.Writer) error {
	sock := filepath.Join(dir, controlSock)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://fakeproviders/mint", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("reach fakeproviders serve at %s: %w (start it: scripts/demo.sh)", sock, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mint: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	_, err = out.Write(body)
	return err
}
