package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// goalShimCPURatio is issue 20's goal for the shim's CPU time per manifest
// HEAD over that of a minimal proxy (reported, not asserted).
const goalShimCPURatio = 1.2

// Each round of BenchmarkShimCPU sends cpuHeads manifest HEADs from
// cpuClients clients through each proxy.
const (
	cpuRounds  = 6
	cpuHeads   = 2000
	cpuClients = 16
)

// minProxy is bench/internal/minproxy built into a temp dir and running
// in front of the fake, a separate process like the shim.
type minProxy struct {
	cmd *exec.Cmd
	url string
}

func startMinProxy(b *testing.B, fake *ecrfake.Server, authorization string) *minProxy {
	b.Helper()
	dir := b.TempDir()
	bin := buildBinary(b, dir, "minproxy", "github.com/ecr-ptc/ecr-ptc/bench/internal/minproxy")
	ca := writeCA(b, dir, fake)
	addr := freeAddr(b)
	cmd := exec.Command(bin, "-listen", addr, "-upstream", "https://"+fake.RegistryHost(), "-ca", ca)
	cmd.Env = append(os.Environ(), "MINPROXY_AUTHORIZATION="+authorization)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start minproxy: %v", err)
	}
	stopAtCleanup(b, cmd, nil)
	p := &minProxy{cmd: cmd, url: "http://" + addr}
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
	defer cancel()
	if err := mirrortest.WaitHTTP(ctx, p.url+"/v2/"); err != nil {
		b.Fatalf("minproxy did not start: %v", err)
	}
	return p
}

// cpuTime is the user plus system CPU time process pid has used so far
// (/proc/<pid>/stat utime and stime).
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("read CPU time: %v", err)
	}
	// The command name (field 2) may hold spaces: count from after it.
	_, rest, ok := strings.Cut(string(data), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		b.Fatalf("unexpected /proc/%d/stat: %q", pid, data)
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatalf("parse /proc/%d/stat: %v", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// headCPU sends n HEADs to url from clients clients and returns the CPU
// time process pid spent meanwhile.
func headCPU(b *testing.B, pid int, tr *http.Transport, url string, n, clients int) time.Duration {
	b.Helper()
	before := cpuTime(b, pid)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := c; i < n; i += clients {
				if _, err := headOnce(b.Context(), tr, url, ""); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Let the process finish what it does after answering (closing spans,
	// returning buffers) before reading its clock.
	time.Sleep(50 * time.Millisecond)
	return cpuTime(b, pid) - before
}

// BenchmarkShimCPU compares, in one run against the same fake ECR, the CPU
// time the shim process spends per manifest HEAD with that of a minimal Go
// reverse proxy that only adds the Authorization header
// (bench/internal/minproxy), both separate processes measured the same way
// (/proc/<pid>/stat), in alternating rounds of cpuHeads HEADs from
// cpuClients clients. The work is fixed, whatever b.N is: run it with
// -benchtime=1x. Goal: shim/min at most 1.2.
func BenchmarkShimCPU(b *testing.B) {
	fake, err := ecrfake.Start(b.Context(), ecrfake.Options{RegistryHostname: "localhost", Dir: b.TempDir()})
	if err != nil {
		b.Fatalf("start fake ECR: %v", err)
	}
	b.Cleanup(func() { _ = fake.Close() })
	shim := startShimProcess(b, fake)
	password, _ := fake.IssueToken()
	req, _ := http.NewRequest(http.MethodHead, "/", nil)
	req.SetBasicAuth("AWS", password)
	minp := startMinProxy(b, fake, req.Header.Get("Authorization"))

	tr := &http.Transport{MaxIdleConnsPerHost: 2 * cpuClients}
	b.Cleanup(tr.CloseIdleConnections)
	shimURL := shim.url + "/v2/library/nginx/manifests/latest"
	minURL := minp.url + "/v2/docker-hub/library/nginx/manifests/latest"
	// The first HEAD makes ECR import the image; both then ask for the
	// same cached manifest. A warm-up round fills connection pools.
	for _, u := range []string{shimURL, minURL} {
		if _, err := headOnce(b.Context(), tr, u, ""); err != nil {
			b.Fatal(err)
		}
	}
	headCPU(b, shim.cmd.Process.Pid, tr, shimURL, cpuHeads/4, cpuClients)
	headCPU(b, minp.cmd.Process.Pid, tr, minURL, cpuHeads/4, cpuClients)

	var shimCPU, minCPU time.Duration
	for b.Loop() {
		shimCPU, minCPU = 0, 0
		for r := range cpuRounds {
			s := func() { shimCPU += headCPU(b, shim.cmd.Process.Pid, tr, shimURL, cpuHeads, cpuClients) }
			m := func() { minCPU += headCPU(b, minp.cmd.Process.Pid, tr, minURL, cpuHeads, cpuClients) }
			if r%2 == 0 {
				s()
				m()
			} else {
				m()
				s()
			}
		}
	}
	heads := float64(cpuRounds * cpuHeads)
	shimPer := float64(shimCPU.Microseconds()) / heads
	minPer := float64(minCPU.Microseconds()) / heads
	if minPer == 0 {
		b.Fatalf("minproxy used no measurable CPU for %.0f HEADs", heads)
	}
	ratio := shimPer / minPer
	b.ReportMetric(shimPer, "shim-cpu-us/head")
	b.ReportMetric(minPer, "min-cpu-us/head")
	b.ReportMetric(ratio, "shim/min-cpu")
	b.Logf("CPU per manifest HEAD (%d rounds x %d HEADs, %d clients, alternating): shim %.1f µs, minimal proxy %.1f µs: shim/min %.2f (goal ≤ %.1f)",
		cpuRounds, cpuHeads, cpuClients, shimPer, minPer, ratio, goalShimCPURatio)
}
