package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
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
