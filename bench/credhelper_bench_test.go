package bench

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// credHelper is a built docker-credential-ecr-ptc with an environment that
// points it at a fake ECR.
type credHelper struct {
	bin  string
	env  []string
	host string
	fake *ecrfake.Server
}

// newCredHelper starts a fake ECR and builds the helper binary.
func newCredHelper(b *testing.B) *credHelper {
	b.Helper()
	fake, err := ecrfake.Start(b.Context(), ecrfake.Options{})
	if err != nil {
		b.Fatalf("start fake ECR: %v", err)
	}
	b.Cleanup(func() { _ = fake.Close() })
	dir := b.TempDir()
	bin := buildBinary(b, dir, "docker-credential-ecr-ptc", "github.com/ecr-ptc/ecr-ptc/cmd/docker-credential-ecr-ptc")
	// On a cache miss the helper runs the ecr-ptc-token installed next to it.
	buildBinary(b, dir, "ecr-ptc-token", "github.com/ecr-ptc/ecr-ptc/cmd/docker-credential-ecr-ptc/ecr-ptc-token")
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "AWS_") && !strings.HasPrefix(k, "ECR_PTC_") {
			env = append(env, kv)
		}
	}
	env = append(env, fake.Env()...)
	env = append(env, "AWS_CONFIG_FILE="+filepath.Join(dir, "aws-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "aws-credentials"))
	return &credHelper{bin: bin, env: env, host: fake.RegistryHost(), fake: fake}
}

// get runs one `get` process with the cache in cacheDir and returns how
// long the whole process took.
func (h *credHelper) get(b *testing.B, cacheDir string) time.Duration {
	cmd := exec.Command(h.bin, "get")
	cmd.Env = slices.Concat(h.env, []string{"ECR_PTC_CACHE_DIR=" + cacheDir}) // h.env is shared by concurrent gets
	cmd.Stdin = strings.NewReader(h.host + "\n")
	start := time.Now()
	out, err := cmd.Output()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("get: %v: %s", err, out)
	}
	var c struct{ Username, Secret string }
	if err := json.Unmarshal(out, &c); err != nil || c.Secret == "" {
		b.Fatalf("get: unexpected answer (%v)", err)
	}
	return took
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// warmRuns and coldRuns are how many whole-process gets
// BenchmarkCredHelperGet times.
const (
	warmRuns = 200
	coldRuns = 20
)

// BenchmarkCredHelperGet times `docker-credential-ecr-ptc get` as whole
// processes: 200 warm gets (token on disk) and, for comparison, 20 cold
// gets (empty cache: the helper runs ecr-ptc-token, which calls the local
// fake ECR once). The work is fixed, whatever b.N is; run it with
// -benchtime=1x and read the reported medians and p95s (ns/op is the
// time of the whole fixed run). Goal: warm median under 5 ms.
func BenchmarkCredHelperGet(b *testing.B) {
	h := newCredHelper(b)
	warmDir := b.TempDir()
	h.get(b, warmDir) // warm the cache
	var warm, cold []time.Duration
	for b.Loop() {
		warm, cold = warm[:0], cold[:0]
		for range coldRuns {
			cold = append(cold, h.get(b, b.TempDir()))
		}
		for range warmRuns {
			warm = append(warm, h.get(b, warmDir))
		}
	}
	warmMed, warmP95 := percentile(warm, 0.5), percentile(warm, 0.95)
	coldMed, coldP95 := percentile(cold, 0.5), percentile(cold, 0.95)
	b.ReportMetric(ms(warmMed), "warm-median-ms")
	b.ReportMetric(ms(warmP95), "warm-p95-ms")
	b.ReportMetric(ms(coldMed), "cold-median-ms")
	b.ReportMetric(ms(coldP95), "cold-p95-ms")
	b.ReportMetric(float64(coldMed)/float64(warmMed), "cold/warm")
	b.Logf("warm get (%d processes): median %.2f ms, p95 %.2f ms (goal: median < 5 ms); cold get (%d processes): median %.2f ms, p95 %.2f ms; cold/warm %.1fx",
		len(warm), ms(warmMed), ms(warmP95), len(cold), ms(coldMed), ms(coldP95), float64(coldMed)/float64(warmMed))
	rounds := h.fake.APICalls("GetAuthorizationToken") - 1
	if rounds%coldRuns != 0 {
		b.Errorf("GetAuthorizationToken calls = %d, want 1 + %d per round (warm gets must not call the API)", rounds+1, coldRuns)
	}
}

// BenchmarkCredHelperColdConcurrent64 starts 64 `get` processes at once on
// an empty cache, 5 rounds whatever b.N is (run with -benchtime=1x), and
// reports the API calls per round (goal: exactly 1) and the wall time
// until the last process answered.
func BenchmarkCredHelperColdConcurrent64(b *testing.B) {
	h := newCredHelper(b)
	const n, rounds = 64, 5
	var walls []time.Duration
	before := h.fake.APICalls("GetAuthorizationToken")
	for b.Loop() {
		for range rounds {
			dir := b.TempDir()
			var wg sync.WaitGroup
			start := time.Now()
			for range n {
				wg.Go(func() { h.get(b, dir) })
			}
			wg.Wait()
			walls = append(walls, time.Since(start))
		}
	}
	calls := h.fake.APICalls("GetAuthorizationToken") - before
	perRound := float64(calls) / float64(len(walls))
	b.ReportMetric(perRound, "api-calls/64-gets")
	b.ReportMetric(ms(percentile(walls, 0.5)), "wall-median-ms")
	b.Logf("%d concurrent cold gets: %.2f GetAuthorizationToken calls per round (goal 1), wall median %.1f ms over %d rounds",
		n, perRound, ms(percentile(walls, 0.5)), len(walls))
	if calls != len(walls) {
		b.Errorf("GetAuthorizationToken calls = %d over %d rounds, want one per round", calls, len(walls))
	}
}
