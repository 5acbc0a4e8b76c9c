package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// workerMemoryLimit is the worker container's memory limit in deploy/base,
// which its GOMEMLIMIT follows.
const workerMemoryLimit = "256MiB"

// workerGOGC is deploy/base's GOGC for the worker.
const workerGOGC = "50"

// gcLine is a GC trace line's heap sizes: at start, at end, live after.
var gcLine = regexp.MustCompile(`(\d+)->(\d+)->(\d+) MB`)

// peakLiveHeap reads the largest live heap of a GODEBUG=gctrace=1 log.
func peakLiveHeap(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var peak int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "gc ") {
			continue
		}
		if m := gcLine.FindStringSubmatch(sc.Text()); m != nil {
			mb, _ := strconv.ParseInt(m[3], 10, 64)
			peak = max(peak, mb<<20)
		}
	}
	return peak, sc.Err()
}

// sampleAnon reads the process's RssAnon every 100 ms until the returned
// func is called, which returns the largest value read.
func sampleAnon(ctx context.Context, pid int) func() int64 {
	var peak atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := procStatus(pid, "RssAnon"); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		cancel()
		<-done
		return peak.Load()
	}
}

// procStatus reads a size field of /proc/<pid>/status (VmHWM, RssAnon) in
// bytes.
func procStatus(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
