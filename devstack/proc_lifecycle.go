package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ensure starts c unless it is already running, then waits until it is ready.
func (p *procs) ensure(ctx context.Context, c *component) error {
	wait, err := p.launch(ctx, c)
	if err != nil {
		return err
	}
	return wait()
}

// launch runs c's prepare hook and starts c unless it is already running. The
// returned function waits until c is ready; it may run in another goroutine.
func (p *procs) launch(ctx context.Context, c *component) (func() error, error) {
	if c.prepare != nil {
		if err := c.prepare(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	if pid, ok := p.running(c); ok {
		note := ""
		switch {
		case !sameArgs(pid, c):
			note = "; started with other flags: `devstack down && devstack up` applies the new ones"
		case binaryReplaced(pid):
			note = "; its binary was rebuilt since: `devstack down && devstack up` runs the new one"
		}
		fmt.Fprintf(p.out, "  %-24s running (pid %d%s)\n", c.name, pid, note)
		alive := func() bool { return isProcess(pid, c) }
		return func() error { return p.waitReady(ctx, c, alive) }, nil
	}
	exited, pid, err := p.start(c)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(p.out, "  %-24s started (pid %d, log %s)\n", c.name, pid, p.logFile(c))
	alive := func() bool {
		select {
		case <-exited:
			return false
		default:
			return true
		}
	}
	return func() error { return p.waitReady(ctx, c, alive) }, nil
}

// start launches c detached from devstack: in its own session, stdin from
// /dev/null, stdout and stderr appended to its log file. The returned channel
// is closed when the process exits while devstack still runs.
func (p *procs) start(c *component) (<-chan struct{}, int, error) {
	for _, port := range c.ports {
		if err := portFree(port); err != nil {
			return nil, 0, fmt.Errorf("%s: %w; stop that process or run `devstack down`%s", c.name, err, c.portHint)
		}
	}
	if c.beforeStart != nil {
		if err := c.beforeStart(); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	for _, dir := range []string{p.pidDir, p.logDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	// 0600, like the credentials beside it: a component's log is not meant
	// to hold a secret, but one written by mistake stays the owner's.
	logf, err := os.OpenFile(p.logFile(c), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: open log: %w", c.name, err)
	}
	defer logf.Close()
	if err := logf.Chmod(0o600); err != nil {
		return nil, 0, fmt.Errorf("%s: log: %w", c.name, err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", c.name, err)
	}
	defer devnull.Close()
	fmt.Fprintf(logf, "\n==== %s devstack: starting %s %s\n", time.Now().Format(time.RFC3339), c.bin, strings.Join(c.args, " "))

	// Not CommandContext: the process must outlive devstack.
	cmd := exec.Command(c.bin, c.args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = p.workDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: c.cred}
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("%s: start %s: %w", c.name, c.bin, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := writeFileAtomic(p.pidFile(c), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return nil, 0, fmt.Errorf("%s: write pid file: %w", c.name, err)
	}
	return exited, pid, nil
}

// waitReady polls c.ready until it succeeds, the process dies, the timeout
// passes or ctx ends.
func (p *procs) waitReady(ctx context.Context, c *component, alive func() bool) error {
	if c.ready == nil {
		return nil
	}
	timeout := c.readyTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	start := time.Now()
	nextNote := start.Add(15 * time.Second)
	var last error
	for {
		probeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = c.ready(probeCtx)
		cancel()
		if last == nil {
			if d := time.Since(start); d > time.Second {
				fmt.Fprintf(p.out, "  %-24s ready after %s\n", c.name, d.Round(100*time.Millisecond))
			}
			return nil
		}
		if !alive() {
			return fmt.Errorf("%s exited before it was ready; last lines of %s:\n%s", c.name, p.logFile(c), tail(p.logFile(c), 20))
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("%s not ready after %s: %w (log %s)", c.name, timeout, last, p.logFile(c))
		}
		if time.Now().After(nextNote) {
			fmt.Fprintf(p.out, "  %-24s waiting… %s (%v)\n", c.name, time.Since(start).Round(time.Second), last)
			nextNote = nextNote.Add(15 * time.Second)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", c.name, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// stop sends c's stop signal (SIGTERM by default) to c's process group (or to
// the process alone, see signalLeaderOnly), then SIGKILL to the group after
// its stop timeout, and removes the pid file. A pid file that does not name
// c's live process is removed without signalling anything.
func (p *procs) stop(ctx context.Context, c *component) error {
	pid, ok := p.running(c)
	if !ok {
		if err := os.Remove(p.pidFile(c)); err == nil {
			fmt.Fprintf(p.out, "  %-24s not running (stale pid file removed)\n", c.name)
		} else {
			fmt.Fprintf(p.out, "  %-24s not running\n", c.name)
		}
		return nil
	}
	target := pid
	if _, pgid, _ := procStat(pid); pgid == pid {
		target = -pid // setsid made it a group leader: reach its children too
	}
	timeout := c.stopTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	sig, sigTarget := c.stopSignal, target
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if c.signalLeaderOnly {
		sigTarget = pid
	}
	start := time.Now()
	if err := syscall.Kill(sigTarget, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: %v %d: %w", c.name, sig, pid, err)
	}
	stopped := waitGone(ctx, pid, c, timeout)
	how := "stopped"
	if !stopped {
		if err := syscall.Kill(target, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("%s: SIGKILL %d: %w", c.name, pid, err)
		}
		if !waitGone(ctx, pid, c, 5*time.Second) {
			return fmt.Errorf("%s: pid %d still alive after SIGKILL", c.name, pid)
		}
		how = "killed after " + timeout.String()
	}
	if err := os.Remove(p.pidFile(c)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	fmt.Fprintf(p.out, "  %-24s %s (pid %d, %s)\n", c.name, how, pid, time.Since(start).Round(10*time.Millisecond))
	return nil
}

// waitGone waits until pid is no longer c's live process.
func waitGone(ctx context.Context, pid int, c *component, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !isProcess(pid, c) {
			return true
		}
		select {
		case <-ctx.Done():
			return !isProcess(pid, c)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return !isProcess(pid, c)
}
