// Package devtemporal runs a Temporal server of a test's own with the
// devstack's `devstack temporal` command, on a SQLite file and free ports,
// so that a test can stop it, or serve it with TLS, without touching the
// devstack's server.
package devtemporal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Server is one `devstack temporal` process.
type Server struct {
	// Port is the frontend's; history, matching and worker take the next
	// three.
	Port int
	// DB is the SQLite file, kept across restarts.
	DB string
	// Log is the file the server writes its log to.
	Log string
	// Args are the flags added to every start (TLS, API keys).
	Args []string

	bin    string
	dir    string
	starts int
	cmd    *exec.Cmd
	done   chan struct{}
}

// New prepares a server in dir on free ports; the devstack binary is found
// under $ROTATOR_DEVSTACK.
func New(dir string, args ...string) (*Server, error) {
	root := os.Getenv("ROTATOR_DEVSTACK")
	if root == "" {
		return nil, errors.New("devtemporal: ROTATOR_DEVSTACK is not set: load the devstack's env (. .devstack/env)")
	}
	port, err := FreePorts()
	if err != nil {
		return nil, err
	}
	return &Server{
		Port: port, DB: filepath.Join(dir, "temporal.db"), Log: filepath.Join(dir, "temporal.log"), Args: args,
		bin: filepath.Join(root, "bin", "devstack"), dir: dir,
	}, nil
}

// Address is the frontend's host:port.
func (s *Server) Address() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// FreePorts finds a frontend port whose next three (history, matching,
// worker) are free too.
func FreePorts() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		base := ln.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{ln}
		ok := base+3 < 65536
		for p := base + 1; ok && p <= base+3; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, l)
		}
		for _, l := range lns {
			_ = l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, errors.New("devtemporal: no four consecutive free ports")
}

// Start runs the server and waits until its ready file says it serves;
// it returns how long that took.
func (s *Server) Start(ctx context.Context) (time.Duration, error) {
	s.starts++
	ready := filepath.Join(s.dir, fmt.Sprintf("ready-%d", s.starts))
	log, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	began := time.Now()
	args := append([]string{"temporal",
		"--db", s.DB, "--frontend-port", strconv.Itoa(s.Port), "--http-port", "0", "--ui-port", "0",
		"--ready-file", ready, "--log-level", "warn"}, s.Args...)
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return 0, fmt.Errorf("devtemporal: start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	s.done = done
	cmd := s.cmd
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(ready); err == nil {
			return time.Since(began), nil
		}
		select {
		case <-done:
			return 0, fmt.Errorf("devtemporal: Temporal exited before it was ready; its log: %s", s.Log)
		case <-ctx.Done():
			return 0, fmt.Errorf("devtemporal: Temporal not ready: %w; its log: %s", ctx.Err(), s.Log)
		case <-tick.C:
		}
	}
}

// Signal sends sig to the server and waits up to two minutes for it to
// exit, killing it after that; it returns how long the exit took.
func (s *Server) Signal(sig syscall.Signal) (time.Duration, error) {
	began := time.Now()
	_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	select {
	case <-s.done:
		return time.Since(began), nil
	case <-time.After(2 * time.Minute):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		return time.Since(began), fmt.Errorf("devtemporal: Temporal did not stop within 2 minutes of %s", sig)
	}
}

// Kill stops a running server at once; a test's cleanup calls it.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// StartForTest starts a server of the test's own in a temporary folder
// with args, fails the test if it does not come up, and kills it when
// the test ends.
func StartForTest(t testing.TB, ctx context.Context, args ...string) *Server {
	t.Helper()
	s, err := New(t.TempDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	took, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("own Temporal server on %s ready in %s", s.Address(), took.Round(100*time.Millisecond))
	return s
}
