package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
)

// Ports of the stack, all on 127.0.0.1.
const (
	temporalFrontendPort = 7233 // history, matching and worker take the next three
	temporalHTTPPort     = 7243
	temporalUIPort       = 8233
	temporalMetricsPort  = 9233
	etcdClientPort       = 2379
	etcdPeerPort         = 2380
	// etcdDataDir is named for the etcd minor version: a data directory of
	// the Debian etcd 3.4 that devstack used before cannot be opened by
	// 3.6 (an upgrade must pass through 3.5), so it is left unused.
	etcdDataDir    = "etcd3.6"
	apiserverPort  = 6443
	controllerPort = 10257
	schedulerPort  = 10259
	kwokPort       = 10247
	// postgresPort (5432) is in postgres.go, redisPort (6380) in redis.go.

	serviceCIDR = "10.96.0.0/16"
	// serviceIP is the first address of serviceCIDR, the kubernetes Service.
	serviceIP = "10.96.0.1"

	// stateMarker is created in every state directory, so that `down --purge`
	// never deletes a directory devstack did not create.
	stateMarker = ".devstack-state"
)

// stack is the local stack rooted at one state directory.
type stack struct {
	// dir is the absolute state directory.
	dir string
	// src is the devstack source directory (with tools/), "" if not found.
	src string
	// self is this executable, which also runs the Temporal server.
	self  string
	out   io.Writer
	procs *procs

	apiMu sync.Mutex
	api   *kubeAPI
}

// newStack resolves the state and source directories; it creates nothing.
func newStack(stateDir, srcDir string, out io.Writer) (*stack, error) {
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating devstack's executable: %w", err)
	}
	s := &stack{dir: dir, src: findSource(srcDir), self: self, out: out}
	s.procs = &procs{pidDir: s.path("pids"), logDir: s.path("logs"), workDir: dir, out: out}
	return s, nil
}

// findSource returns the devstack source directory: the --src flag, else
// ./devstack or . (the Makefile runs from the repository root), else the
// directory this file was compiled from.
func findSource(flagValue string) string {
	if flagValue != "" {
		abs, err := filepath.Abs(flagValue)
		if err != nil {
			return flagValue
		}
		return abs
	}
	candidates := []string{"devstack", "."}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Dir(file))
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "tools", "kube", "go.mod")); err == nil {
			if abs, err := filepath.Abs(c); err == nil {
				return abs
			}
		}
	}
	return ""
}

func (s *stack) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

func (s *stack) bin(name string) string { return s.path("bin", name) }

func (s *stack) kubeconfig() string { return s.path("kubeconfig") }

func (s *stack) kubectl() kubectl {
	return kubectl{bin: s.bin("kubectl"), kubeconfig: s.kubeconfig()}
}

// kubeAPI returns the API client, loading the admin certificate on first use.
func (s *stack) kubeAPI() (*kubeAPI, error) {
	s.apiMu.Lock()
	defer s.apiMu.Unlock()
	if s.api == nil {
		api, err := newKubeAPI("https://127.0.0.1:"+strconv.Itoa(apiserverPort), s.path("pki"))
		if err != nil {
			return nil, err
		}
		s.api = api
	}
	return s.api, nil
}

// components returns every component in start order.
func (s *stack) components() []*component {
	return append([]*component{s.temporal(), s.postgres().component(), s.redis().component(), s.vault().component()}, s.kubeComponents()...)
}

// kubeComponents returns the Kubernetes components in start order.
func (s *stack) kubeComponents() []*component {
	return []*component{s.etcd(), s.apiserver(), s.controllerManager(), s.scheduler(), s.kwok()}
}

func (s *stack) markers(extra ...string) []string {
	return append([]string{s.dir + string(os.PathSeparator)}, extra...)
}
