package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on
// Linux everywhere this runs).
const clockTick = 10 * time.Millisecond

// cpuShare is the CPU time each process of the stack used in a window.
type cpuShare struct {
	name string
	cpu  time.Duration
}

// processes names the devstack's processes by their pid files, plus the
// extras given (the benchmark's own worker).
func processes(extra map[string]int) map[string]int {
	out := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(os.Getenv("ROTATOR_DEVSTACK"), "pids", "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			name := strings.TrimSuffix(filepath.Base(f), ".pid")
			if name == "temporal" {
				name = "temporal server"
			}
			out[name] = pid
		}
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// cpuTimes reads each process's user plus system CPU time so far,
// children included (PostgreSQL's work happens in its backends).
func cpuTimes(procs map[string]int) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, pid := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command may hold spaces; the fields start after its ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		// utime, stime, cutime, cstime are fields 14-17, here 11-14.
		var ticks int64
		for _, i := range []int{11, 12, 13, 14} {
			if i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				ticks += v
			}
		}
		out[name] = time.Duration(ticks) * clockTick
	}
	return out
}

// cpuUsed is the CPU each process used between two readings, largest first.
func cpuUsed(before, after map[string]time.Duration) []cpuShare {
	var out []cpuShare
	for name, a := range after {
		if d := a - before[name]; d > 0 {
			out = append(out, cpuShare{name, d})
		}
	}
	slices.SortFunc(out, func(x, y cpuShare) int { return int(y.cpu - x.cpu) })
	return out
}

// totalCPU sums the shares.
func totalCPU(s []cpuShare) time.Duration {
	var t time.Duration
	for _, c := range s {
		t += c.cpu
	}
	return t
}

// stolen reads the machine's steal time so far: CPU the hypervisor gave to
// other guests while this one wanted it, which slows every process here.
func stolen() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	// cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	ticks, _ := strconv.ParseInt(f[8], 10, 64)
	return time.Duration(ticks) * clockTick
}
