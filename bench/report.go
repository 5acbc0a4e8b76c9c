package main

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is everything one `make bench` measured.
type report struct {
	date      time.Time
	runs      int
	jwt       []jwtSet
	logins    map[string][]loginRun
	unitSuite []time.Duration
	scale     []scaleRun
	// workerFlags are the scale runs' bin/worker flags.
	workerFlags []string
}

func writeReport(path string, r report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nWritten by `make bench` (`go run ./bench`); do not edit by hand. Figures are the median of %d runs, with min–max.\n\n", r.runs)
	fmt.Fprintf(&b, "- date: %s\n- machine: %s, %d cores, %s\n- stack: the devstack (kube-apiserver v1.34.4 on etcd v3.6.16 + kwok, PostgreSQL 15, Redis 7, Temporal server v1.32.1), all on this machine\n\n",
		r.date.UTC().Format("2006-01-02 15:04 MST"), cpuModel(), runtime.NumCPU(), runtime.Version())

	writeJWT(&b, r.jwt)
	b.WriteString("## Failed logins during a password rotation\n\n")
	b.WriteString("A client opens a new connection (PostgreSQL, or Redis over TLS for the redis row) every 10 ms, round robin over the consumer's running pods " +
		"(3 replicas), with the credentials in the Secret that pod references, from the start of the procedure until one " +
		"second after the new Secret is live in every pod. Wall time is until the rollout finished.\n\n")
	b.WriteString("| procedure | failed logins | attempts | failed share | wall time to new Secret live |\n|---|---|---|---|---|\n")
	order := []string{}
	for name := range r.logins {
		order = append(order, name)
	}
	slices.Sort(order)
	for _, name := range order {
		runs := r.logins[name]
		fails := collect(runs, func(x loginRun) float64 { return float64(x.failures) })
		attempts := collect(runs, func(x loginRun) float64 { return float64(x.attempts) })
		share := collect(runs, func(x loginRun) float64 {
			if x.attempts == 0 {
				return 0
			}
			return 100 * float64(x.failures) / float64(x.attempts)
		})
		wall := collect(runs, func(x loginRun) float64 { return x.wall.Seconds() })
		fmt.Fprintf(&b, "| %s | %s | %s | %s %% | %s s |\n", name, spread(fails, "%.0f"), spread(attempts, "%.0f"), spread(share, "%.1f"), spread(wall, "%.1f"))
	}
	b.WriteString("\nTarget: alternating-users and redis = 0 failed logins (a Redis ACL user holds the old and the new password until retire). single-user fails, like the runbook, for new connections " +
		"from pods that still hold the old Secret between the ALTER ROLE and the end of the rollout. kwok makes pods ready at " +
		"once, so rollouts here take about a second; on a real cluster the window, and with it the failed logins of single-user " +
		"and the runbook, grows with the rollout time, while alternating-users and redis stay at 0 because both passwords work " +
		"throughout. The runbook also does two rollouts (patch, then rollout restart) where rotator does one.\n")
	if len(r.scale) > 0 {
		b.WriteString("\n## Scale: N concurrent JWT rotations on one worker\n\n")
		opts := "default worker options"
		if len(r.workerFlags) > 0 {
			opts = "worker flags `" + strings.Join(r.workerFlags, " ") + "`"
		}
		fmt.Fprintf(&b, "N targets in one namespace, each its own Secret and 1-replica Deployment (named as the target's consumer in "+
			"the catalog; its pods on a kwok node of the run's own, as the devstack's two hold 110 pods each), started at once and rotated by one `bin/worker` process (%s) on this 2-core machine, which also runs the "+
			"whole devstack (its Temporal server: one history shard, SQLite in write-ahead-log mode). The worker runs as deploy/base runs it, with GOMEMLIMIT=256MiB from its memory limit and GOGC=50; its GC trace gives the live heap. VmHWM counts the pages of the worker's binary it has read as well as its own memory; RssAnon, sampled every 100 ms, is its own memory alone. Each run waits until the previous run's namespace is gone. One run each. Time until all are in grace: from the first start until the last of the N histories records the step grace; CPU is counted until a count of the rotations in grace (asked every 3 s) saw them all. *Cluster alone* is the same N rollouts "+
			"without rotator: each Deployment patched directly, 32 at a time, until all have rolled out; it is the floor the "+
			"cluster (kube-controller-manager, raised by the devstack to 200 requests/s, kube-scheduler and kwok) sets.\n\n", opts)
		b.WriteString("| N | time until all are in grace | per rotation | cluster alone | worker peak RSS (VmHWM) | of it anonymous (peak RssAnon) | worker peak live heap | history events until grace | CPU time until all are in grace, by process | CPU stolen by the hypervisor meanwhile |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range r.scale {
			cluster := "–"
			if s.cluster > 0 {
				cluster = fmt.Sprintf("%.1f s", s.cluster.Seconds())
			}
			if s.err != "" {
				fmt.Fprintf(&b, "| %d | failed: %s | – | – | – | – | – | – | – | – |\n", s.n, s.err)
				continue
			}
			toGrace := fmt.Sprintf("%.1f s", s.toGrace.Seconds())
			if s.timedOut {
				toGrace = fmt.Sprintf("> %.0f s (%d of %d in grace)", s.toGrace.Seconds(), s.inGrace, s.n)
			}
			var cpu []string
			for _, c := range s.cpu {
				if c.cpu >= time.Second/2 {
					cpu = append(cpu, fmt.Sprintf("%s %.0f s", c.name, c.cpu.Seconds()))
				}
			}
			fmt.Fprintf(&b, "| %d | %s | %.0f ms | %s | %d MiB | %d MiB | %d MiB | %d | %.0f s: %s | %.0f s |\n", s.n, toGrace,
				float64(s.toGrace.Milliseconds())/float64(s.n), cluster, s.peakRSS>>20, s.peakAnon>>20, s.peakLive>>20, s.eventsToGrace,
				totalCPU(s.cpu).Seconds(), strings.Join(cpu, ", "), s.steal.Seconds())
		}
		b.WriteString("\nTargets (issue 8): 1,000 in ≤ 120 s, RSS ≤ 256 MiB, ≤ 60 events and ≤ 15 API requests per single-consumer rotation. " +
			"The namespace scan of issue 15 (nine kinds, in preflight, after the rollout and at retire) raised a rotation's requests to 37 " +
			"and the worker's memory at N=1000; the scale targets are issue 19's to meet again. " +
			"Events and requests per rotation do not grow with N (with consumers named; discovery and retire list the namespace's " +
			"workloads, the same number of requests, each larger with N). The 2 cores are busy throughout, and the CPU column says by whom: " +
			"the API server (the cluster's own rollout work, its Deployment, ReplicaSet and pod status updates and events, is most " +
			"of its load), the Temporal server, etcd, kube-controller-manager, and the worker last. This machine is a virtual one: the hypervisor withholds CPU from it at times (steal, last column), and the same run can take noticeably longer from one time to the next: one run of a size says less than the table's precision suggests. A rotation costs Temporal two " +
			"workflow tasks and one activity task until grace: preflight and stage run as local activities in the first workflow " +
			"task, and promote and the rollout wait are one activity.\n")
	}
	unit := make([]float64, 0, len(r.unitSuite))
	for _, d := range r.unitSuite {
		unit = append(unit, d.Seconds())
	}
	slices.Sort(unit)
	fmt.Fprintf(&b, "\n## Unit suite\n\n`go test -count=1 ./workflows/...` (every workflow test, including full 7-day grace periods under "+
		"the test suite's time skipping, and the replay of a recorded history), wall time including compilation: %s s.\n", spread(unit, "%.1f"))
	if err := os.MkdirAll("docs", 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func writeJWT(b *strings.Builder, sets []jwtSet) {
	const runbook, rotator = "runbook (kubectl, as written)", "rotator (dual-key)"
	b.WriteString("## JWT rotation: the runbook and rotator side by side\n\n")
	b.WriteString("The same 3-replica Deployment reading `JWT_SECRET` from a Secret, rotated by the runbook's kubectl steps as " +
		"written (create `-new`, patch, `rollout restart`, `rollout status`, then delete and rename) and by rotator " +
		"(dual-key target). Wall time runs until the new key is live in every pod (rollout done; for rotator: the rotation " +
		"reached grace). Rolling out: the consumer watched throughout, from the first change of its pod template to the end of " +
		"the rollout of the last one; the rest of the wall time is the procedure's own. API requests: kubectl's own request log (`-v=6`), and a counting transport on the worker's client " +
		"for the whole rotation, retire included. Old tokens: 100 HS256 tokens signed with the old key before the rotation, " +
		"verified with the keys of the Secret the pods reference once the new key is live.\n\n" +
		"Both procedures run twice: with kwok's fast stages, which make a pod Ready the moment it is scheduled, and with pods " +
		"that become Ready a while after they start, as an application behind a readiness probe does (the devstack's kwok " +
		"reads the delay from the pod annotation `" + readyDelayAnnotation + "`).\n\n")
	rollingRatio := map[time.Duration]float64{}
	for _, set := range sets {
		results := set.runs
		if set.readyDelay == 0 {
			b.WriteString("### Pods Ready at once\n\n")
		} else {
			fmt.Fprintf(b, "### Pods Ready %s after they start\n\n", set.readyDelay)
		}
		b.WriteString("| procedure | wall time | of which the consumer was rolling out | outside the rollout | rollouts | API requests | history events | old tokens still valid | consumer ends on |\n|---|---|---|---|---|---|---|---|---|\n")
		med, outMed, rollMed := map[string]float64{}, map[string]float64{}, map[string]float64{}
		for _, name := range slices.Sorted(maps.Keys(results)) {
			runs := results[name]
			wall := collect(runs, func(x jwtRun) float64 { return x.wall.Seconds() })
			rolling := collect(runs, func(x jwtRun) float64 { return x.rolling.Seconds() })
			outside := collect(runs, func(x jwtRun) float64 { return (x.wall - x.rolling).Seconds() })
			med[name], outMed[name], rollMed[name] = median(wall), median(outside), median(rolling)
			last := runs[len(runs)-1]
			ends := fmt.Sprintf("`%s`", last.reference)
			if !last.exists {
				ends += " (which no longer exists)"
			}
			events := "–"
			if last.events > 0 {
				events = spread(collect(runs, func(x jwtRun) float64 { return float64(x.events) }), "%.0f")
			}
			fmt.Fprintf(b, "| %s | %s s | %s s | %s s | %s | %s | %s | %s %% | %s |\n", name, spread(wall, "%.2f"),
				spread(rolling, "%.2f"), spread(outside, "%.2f"),
				spread(collect(runs, func(x jwtRun) float64 { return float64(x.rollouts) }), "%.0f"),
				spread(collect(runs, func(x jwtRun) float64 { return float64(x.requests) }), "%.0f"),
				events,
				spread(collect(runs, func(x jwtRun) float64 { return 100 * x.oldTokens }), "%.0f"), ends)
		}
		if med[runbook] > 0 && outMed[runbook] > 0 && rollMed[rotator] > 0 {
			fmt.Fprintf(b, "\nrotator / runbook, medians: wall time %.2f (target ≤ 0.5); outside the rollout, the time each procedure adds to the cluster's, %.2f; rolling out %.2f.\n\n",
				med[rotator]/med[runbook], outMed[rotator]/outMed[runbook], rollMed[rotator]/rollMed[runbook])
			rollingRatio[set.readyDelay] = rollMed[runbook] / rollMed[rotator]
		}
	}
	b.WriteString(requestsNote)
	if len(rollingRatio) == len(sets) && len(sets) == 2 {
		fmt.Fprintf(b, "\nThe runbook rolls the consumer out twice (patch, then `rollout restart`), rotator once; how much the second "+
			"rollout costs depends on how fast pods become ready. The restart follows the patch at once, so the second rollout "+
			"starts while the first has barely begun, and the Deployment controller scales down the first rollout's pods that are "+
			"not yet available rather than finishing it. The runbook's time rolling out was %.1f× rotator's with pods Ready at once "+
			"and %.1f× with pods Ready after %s: the wall-time target of 0.5 assumes two rollouts one after the other, which the "+
			"runbook as written does not do.\n", rollingRatio[0], rollingRatio[sets[1].readyDelay], sets[1].readyDelay)
	}
	b.WriteString("\nAfter the runbook's rename the Deployment still reads `-new`: the standard-named Secret it recreated is " +
		"unused, and a later clean-up of `-new` breaks the application. rotator's consumers read a versioned Secret that exists " +
		"and is labelled current.\n\n")
}

func median(sorted []float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	if len(sorted)%2 == 0 {
		return (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	return sorted[len(sorted)/2]
}

// collect applies f to every run and sorts the figures.
func collect[T any](runs []T, f func(T) float64) []float64 {
	out := make([]float64, 0, len(runs))
	for _, r := range runs {
		out = append(out, f(r))
	}
	slices.Sort(out)
	return out
}

// spread renders "median (min–max)" of sorted values.
func spread(sorted []float64, format string) string {
	if len(sorted) == 0 {
		return "–"
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", median(sorted), sorted[0], sorted[len(sorted)-1])
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// requestsNote says where rotator's requests for one JWT rotation go.
const requestsNote = "rotator's requests, one consumer discovered in the namespace: preflight 11 (the target's versions by label, " +
	"the original Secret, and the namespace scan: Deployments, StatefulSets, DaemonSets, ReplicaSets, CronJobs, Jobs, pods, " +
	"ReplicationControllers and Ingresses listed at once), stage 2 (the current version, for the keys it carries and the dual key, " +
	"and the create), promote 3 (one patch per consumer built from what preflight read and guarded by its resourceVersion; " +
	"the two versions relabelled, adopting the original), rollout 10 (a watch from the patch's resourceVersion, which also " +
	"checks the rolled-out template, then the scan again for anything still on the old version, so verify reads nothing), " +
	"retire 11 (the scan again, since anything may use the old Secret after grace, a read of it for other managers, and a " +
	"delete guarded by its UID). Scans that run at once in one worker share the lists.\n"
