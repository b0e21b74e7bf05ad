package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clog "github.com/containerd/log"

	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// The goals of issue 6, reported next to the measurements (not asserted:
// this machine runs client, shim and fake ECR on the same two cores).
const (
	goalPullRatio    = 1.03
	goalAddedP50Ms   = 0.3
	goalPeakRSSMiB   = 40
	bigImageLayers   = 8
	bigImageLayerMiB = 128
)

// shimProcess is `ecr-ptc mirror` built into a temp dir and running in
// front of the fake, as a separate process so its memory can be measured.
type shimProcess struct {
	cmd *exec.Cmd
	url string
	log string
}

func startShimProcess(b *testing.B, fake *ecrfake.Server) *shimProcess {
	b.Helper()
	dir := b.TempDir()
	bin := buildBinary(b, dir, "ecr-ptc", "github.com/ecr-ptc/ecr-ptc/cmd/ecr-ptc")
	ca := writeCA(b, dir, fake)
	addr := freeAddr(b)

	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "AWS_") && !strings.HasPrefix(k, "ECR_PTC_") && k != "SSL_CERT_FILE" {
			env = append(env, kv)
		}
	}
	o := fake.Options()
	env = append(env, fake.Env()...)
	env = append(env,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"SSL_CERT_FILE="+ca,
		"ECR_PTC_NO_CACHE=1",
		// The fake's registry is "localhost": declare it an ECR registry.
		"ECR_PTC_REGISTRIES="+o.RegistryHostname+"="+o.AccountID+":"+o.Region,
	)
	args := []string{"mirror", "--listen", addr, "--registry", fake.RegistryHost(), "--mirror-log-level", "info"}
	for _, r := range mirrortest.Rules(fake) {
		args = append(args, "--rule", r.Upstream+"="+r.Prefix)
	}
	logPath := filepath.Join(dir, "shim.log")
	logf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = logf
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		b.Fatalf("start shim: %v", err)
	}
	p := &shimProcess{cmd: cmd, url: "http://" + addr, log: logPath}
	stopAtCleanup(b, cmd, func() { logf.Close() })
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
	defer cancel()
	if err := mirrortest.WaitHTTP(ctx, p.url+"/healthz"); err != nil {
		msg, _ := os.ReadFile(logPath)
		b.Fatalf("shim did not start: %v\n%s", err, msg)
	}
	return p
}

// peakRSSMiB reads VmHWM (peak resident set) of the shim process.
func (p *shimProcess) peakRSSMiB(b *testing.B) float64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatalf("read shim status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatalf("parse VmHWM %q: %v", v, err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}

// BenchmarkMirror compares, in one run, the shim against the fake ECR
// directly: a ~1 GiB multi-layer pull with containerd's resolver and
// fetcher, manifest HEAD latency at 1, 64 and 256 concurrent clients, and
// the shim process's peak RSS.
func BenchmarkMirror(b *testing.B) {
	_ = clog.SetLevel("error")
	fake, err := ecrfake.Start(b.Context(), ecrfake.Options{RegistryHostname: "localhost", Dir: b.TempDir()})
	if err != nil {
		b.Fatalf("start fake ECR: %v", err)
	}
	b.Cleanup(func() { _ = fake.Close() })
	shim := startShimProcess(b, fake)

	for range b.N {
		b.Run("pull-1GiB", func(b *testing.B) { benchPull(b, fake, shim) })
		b.Run("head-latency", func(b *testing.B) { benchHeadLatency(b, fake, shim) })
		b.Run("shim-rss", func(b *testing.B) {
			rss := shim.peakRSSMiB(b)
			b.ReportMetric(rss, "peak-RSS-MiB")
			b.Logf("shim process peak RSS (VmHWM) over the 1 GiB pulls and up to 256 concurrent clients: %.1f MiB (goal ≤ %d MiB)", rss, goalPeakRSSMiB)
		})
	}
}

func benchPull(b *testing.B, fake *ecrfake.Server, shim *shimProcess) {
	start := time.Now()
	img, err := fake.AddImage("docker.io", "bench/big:v1", bigImageLayers, bigImageLayerMiB<<20)
	if err != nil {
		b.Fatalf("add 1 GiB image: %v", err)
	}
	b.Logf("generated %s (%d layers of %d MiB) in %s", img.Digest, bigImageLayers, bigImageLayerMiB, time.Since(start).Round(time.Millisecond))

	password, _ := fake.IssueToken()
	tr := fake.HTTPClient().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	directHosts := b.TempDir() // no hosts.toml: the registry itself, with the ECR token
	shimHosts := b.TempDir()
	if err := mirrortest.WriteHostsDir(shimHosts, shim.url, []string{"docker.io"}, nil); err != nil {
		b.Fatal(err)
	}
	direct := fake.RegistryHost() + "/docker-hub/bench/big:v1"
	viaShim := "docker.io/bench/big:v1"

	// Keep the client's content store in memory when /dev/shm is there, so
	// disk write-back of one pull does not slow the next one down.
	storeRoot := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		storeRoot = "/dev/shm"
	}
	pull := func(ref, hostsDir string) time.Duration {
		store := filepath.Join(storeRoot, fmt.Sprintf("ecr-ptc-bench-%d", time.Now().UnixNano()))
		defer os.RemoveAll(store)
		ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
		defer cancel()
		t0 := time.Now()
		res, err := mirrortest.Pull(ctx, ref, mirrortest.PullOptions{
			HostsDir: hostsDir, StoreDir: store, Transport: tr,
			Credentials: func(host string) (string, string, error) {
				if host == fake.RegistryHost() {
					return "AWS", password, nil
				}
				return "", "", nil
			},
		})
		d := time.Since(t0)
		if err != nil {
			b.Fatalf("pull %s: %v", ref, err)
		}
		if res.Digest.String() != img.Digest {
			b.Fatalf("pull %s gave %s, want %s", ref, res.Digest, img.Digest)
		}
		return d
	}
	// The first pull makes ECR import the image from the upstream; it is
	// not measured.
	b.Logf("warm-up pull through ECR's import: %s", pull(direct, directHosts).Round(time.Millisecond))
	// Alternate which goes first, so neither profits from the other's
	// warm caches.
	var directs, shims []time.Duration
	for i := range pullRounds {
		if i%2 == 0 {
			directs = append(directs, pull(direct, directHosts))
			shims = append(shims, pull(viaShim, shimHosts))
		} else {
			shims = append(shims, pull(viaShim, shimHosts))
			directs = append(directs, pull(direct, directHosts))
		}
	}
	dMed, sMed := median(directs), median(shims)
	ratio := float64(sMed) / float64(dMed)
	bestRatio := float64(slices.Min(shims)) / float64(slices.Min(directs))
	b.ReportMetric(ratio, "pull-ratio")
	b.ReportMetric(bestRatio, "pull-ratio-best")
	b.ReportMetric(dMed.Seconds(), "direct-pull-s")
	b.ReportMetric(sMed.Seconds(), "shim-pull-s")
	b.Logf("1 GiB pull, median of %d alternating runs: direct %s, through the shim %s: ratio %.3f (best-of ratio %.3f; goal ≤ %.2f, blob redirects passed to the client)",
		pullRounds, dMed.Round(time.Millisecond), sMed.Round(time.Millisecond), ratio, bestRatio, goalPullRatio)
	b.Logf("all runs: direct %v, shim %v (client, fake ECR/S3 and shim share this machine's CPUs: expect noise)", round(directs), round(shims))
}

func benchHeadLatency(b *testing.B, fake *ecrfake.Server, shim *shimProcess) {
	password, _ := fake.IssueToken()
	directTr := fake.HTTPClient().Transport.(*http.Transport).Clone()
	directTr.MaxIdleConnsPerHost = 512
	shimTr := &http.Transport{MaxIdleConnsPerHost: 512}
	b.Cleanup(directTr.CloseIdleConnections)
	b.Cleanup(shimTr.CloseIdleConnections)
	directURL := "https://" + fake.RegistryHost() + "/v2/docker-hub/library/nginx/manifests/latest"
	shimURL := shim.url + "/v2/library/nginx/manifests/latest"
	// Make sure ECR has the image cached before timing.
	if _, err := headOnce(b.Context(), shimTr, shimURL, ""); err != nil {
		b.Fatal(err)
	}
	for _, clients := range []int{1, 64, 256} {
		perClient := max(20, 2000/clients)
		d := measure(b, directTr, directURL, password, clients, perClient)
		s := measure(b, shimTr, shimURL, "", clients, perClient)
		added := float64(s.p50-d.p50) / float64(time.Millisecond)
		b.ReportMetric(added, fmt.Sprintf("added-p50-ms/c%d", clients))
		b.ReportMetric(float64(s.p99-d.p99)/float64(time.Millisecond), fmt.Sprintf("added-p99-ms/c%d", clients))
		b.Logf("manifest HEAD, %3d clients x %3d: direct p50 %7.3f ms p99 %7.3f ms | shim p50 %7.3f ms p99 %7.3f ms | added p50 %+.3f ms (goal ≤ %.1f)",
			clients, perClient, msOf(d.p50), msOf(d.p99), msOf(s.p50), msOf(s.p99), added, goalAddedP50Ms)
	}
}

// pullRounds is how many times each way pulls the 1 GiB image.
const pullRounds = 4

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func round(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type percentiles struct{ p50, p99 time.Duration }

// measure runs clients goroutines, each sending perClient HEADs, after one
// warm-up round, and returns the latency percentiles.
func measure(b *testing.B, tr *http.Transport, url, password string, clients, perClient int) percentiles {
	b.Helper()
	run := func(n int) []time.Duration {
		var (
			mu  sync.Mutex
			all = make([]time.Duration, 0, clients*n)
			wg  sync.WaitGroup
		)
		for range clients {
			wg.Go(func() {
				local := make([]time.Duration, 0, n)
				for range n {
					d, err := headOnce(b.Context(), tr, url, password)
					if err != nil {
						b.Error(err)
						return
					}
					local = append(local, d)
				}
				mu.Lock()
				all = append(all, local...)
				mu.Unlock()
			})
		}
		wg.Wait()
		return all
	}
	run(2)
	all := run(perClient)
	if len(all) == 0 {
		b.Fatal("no successful requests")
	}
	slices.Sort(all)
	return percentiles{p50: all[len(all)/2], p99: all[len(all)*99/100]}
}

func headOnce(ctx context.Context, tr http.RoundTripper, url, password string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	if password != "" {
		req.SetBasicAuth("AWS", password)
	}
	t0 := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HEAD %s: %d", url, resp.StatusCode)
	}
	return d, nil
}
