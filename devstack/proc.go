package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// component is one long-running process of the stack. Start, stop and status
// are generic over it; adding PostgreSQL or Vault means adding one of these.
type component struct {
	name string
	// bin is the absolute path of the executable.
	bin  string
	args []string
	// env holds KEY=VALUE entries added to devstack's own environment.
	env []string
	// cred, if set, is the user the process runs as (PostgreSQL refuses
	// root); devstack must then be root.
	cred *syscall.Credential
	// addr is what status shows, e.g. "127.0.0.1:6443".
	addr string
	// ports are checked to be free before the component is started, so that a
	// foreign process holding one is reported instead of probed as ours.
	ports []int
	// portHint is added to the error when a port is taken, naming the
	// usual culprit.
	portHint string
	// markers must all appear in /proc/<pid>/cmdline (besides the executable's
	// base name) for a pid file to be trusted; they tie the process to this
	// state directory.
	markers []string
	// prepare runs before every start or re-check (idempotent set-up that needs
	// earlier components, e.g. registering the fake nodes before kwok).
	prepare func(ctx context.Context) error
	// beforeStart runs only when a new process is about to be started (e.g.
	// removing a stale ready file).
	beforeStart func() error
	// ready returns nil once the component serves; it is polled.
	ready        func(ctx context.Context) error
	readyTimeout time.Duration
	stopTimeout  time.Duration
	// stopSignal asks the process to stop; SIGTERM if zero.
	stopSignal syscall.Signal
	// signalLeaderOnly sends stopSignal to the process alone instead of its
	// process group, for servers that stop their own children and give the
	// signal another meaning in them. SIGKILL still goes to the group.
	signalLeaderOnly bool
}

// procs starts, finds and stops components, keeping one pid file and one log
// file per component.
type procs struct {
	pidDir string
	logDir string
	// workDir is the working directory of started processes.
	workDir string
	out     io.Writer
}

func (p *procs) pidFile(c *component) string { return filepath.Join(p.pidDir, c.name+".pid") }

// logFile returns the log file of c.
func (p *procs) logFile(c *component) string { return filepath.Join(p.logDir, c.name+".log") }

// running returns the pid of c if its pid file names a live process that is c.
func (p *procs) running(c *component) (int, bool) {
	data, err := os.ReadFile(p.pidFile(c))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, isProcess(pid, c)
}

// isProcess reports whether pid is alive (not a zombie) and its command line is
// that of c.
func isProcess(pid int, c *component) bool {
	if state, _, ok := procStat(pid); !ok || state == "Z" || state == "X" {
		return false
	}
	argv := procArgs(pid)
	if len(argv) == 0 || filepath.Base(argv[0]) != filepath.Base(c.bin) {
		return false
	}
	cmdline := strings.Join(argv, " ")
	for _, m := range c.markers {
		if !strings.Contains(cmdline, m) {
			return false
		}
	}
	return true
}

// sameArgs reports whether pid runs with exactly c's arguments.
func sameArgs(pid int, c *component) bool {
	argv := procArgs(pid)
	return len(argv) > 0 && slices.Equal(argv[1:], c.args)
}

// procArgs returns the command line of pid; nil if it is gone or a zombie.
func procArgs(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(raw) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
}

// binaryReplaced reports whether the executable pid runs was deleted or
// replaced (e.g. by a rebuild) after it started.
func binaryReplaced(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasSuffix(exe, " (deleted)")
}

// procStat returns the state letter and the process group id of pid, read
// from /proc/<pid>/stat.
func procStat(pid int) (state string, pgid int, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", 0, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 3 {
		return "", 0, false
	}
	pgid, err = strconv.Atoi(fields[2])
	return fields[0], pgid, err == nil
}

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

// componentStatus is one row of `devstack status`.
type componentStatus struct {
	name, addr, state string
	pid               int
	ok                bool
}

// status reports whether c runs and, if so, whether it answers its probe.
func (p *procs) status(ctx context.Context, c *component) componentStatus {
	st := componentStatus{name: c.name, addr: c.addr, state: "stopped"}
	pid, ok := p.running(c)
	if !ok {
		if _, err := os.Stat(p.pidFile(c)); err == nil {
			st.state = "stopped (stale pid file)"
		}
		return st
	}
	st.pid = pid
	st.state = "running"
	if c.ready != nil {
		probeCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := c.ready(probeCtx); err != nil {
			st.state = "running, not ready: " + err.Error()
			return st
		}
	}
	st.ok = true
	return st
}

// portFree reports an error if something already listens on 127.0.0.1:port.
func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port 127.0.0.1:%d is in use by another process", port)
	}
	return l.Close()
}

// tail returns the last n lines of a file, indented, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "    (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// writeFileAtomic writes data to a temporary file next to path and renames it.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
