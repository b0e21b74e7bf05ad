package ecrfake

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Faults are injected into the registry and S3 listeners. The zero value
// injects nothing. Set them with Server.SetFaults.
type Faults struct {
	// Latency is added before every matching request is answered.
	Latency time.Duration
	// ErrorRate5xx is the share (0..1) of matching requests answered with a
	// server error: 500 with the registry error UNKNOWN, or S3's InternalError.
	ErrorRate5xx float64
	// ErrorRate429 is the share (0..1) of matching requests answered as
	// throttled: on the registry 429 TOOMANYREQUESTS with Retry-After, on S3 a
	// 503 SlowDown.
	ErrorRate429 float64
	// CutBlobAfter, when positive, closes the TCP connection after that many
	// bytes of every matching blob body served by the S3 stand-in.
	CutBlobAfter int64
	// S3Forbidden answers matching S3 requests 403 AccessDenied "Request
	// has expired", as S3 does for a presigned URL used too late.
	S3Forbidden bool
	// SlowBody, when positive, pauses this long before every 16 KiB of
	// every matching blob body served by the S3 stand-in: a slow link.
	SlowBody time.Duration
	// Seed makes the choice of failing requests repeatable. Default 1.
	Seed int64
	// Paths, when set, limits faults to requests whose path contains one of
	// these substrings (e.g. "/manifests/", "/blobs/").
	Paths []string
	// Listeners, when set, limits faults to these listeners ("registry", "s3").
	// Default both.
	Listeners []string
	// MaxFaults, when positive, stops injecting errors and cuts after that
	// many (latency is not counted).
	MaxFaults int
}

// faultState draws faults deterministically.
type faultState struct {
	mu       sync.Mutex
	f        Faults
	rng      *rand.Rand
	injected int
}

func (fs *faultState) set(f Faults) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f.Seed == 0 {
		f.Seed = 1
	}
	fs.f = f
	fs.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x65637266616b65))
	fs.injected = 0
}

// decision is what to do with one request.
type decision struct {
	latency time.Duration
	status  string // "", "5xx", "429"
	cut     int64
	slow    time.Duration
}

func (fs *faultState) decide(listener, path string) decision {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.f
	if fs.rng == nil {
		return decision{}
	}
	if len(f.Listeners) > 0 && !slices.Contains(f.Listeners, listener) {
		return decision{}
	}
	if len(f.Paths) > 0 && !slices.ContainsFunc(f.Paths, func(p string) bool { return strings.Contains(path, p) }) {
		return decision{}
	}
	d := decision{latency: f.Latency}
	budget := f.MaxFaults <= 0 || fs.injected < f.MaxFaults
	if budget && (f.ErrorRate5xx > 0 || f.ErrorRate429 > 0) {
		x := fs.rng.Float64()
		switch {
		case x < f.ErrorRate5xx:
			d.status = "5xx"
		case x < f.ErrorRate5xx+f.ErrorRate429:
			d.status = "429"
		}
		if d.status != "" {
			fs.injected++
			return d
		}
	}
	if budget && f.S3Forbidden && listener == "s3" {
		fs.injected++
		d.status = "403"
		return d
	}
	if listener == "s3" {
		d.slow = f.SlowBody
	}
	if budget && f.CutBlobAfter > 0 && listener == "s3" {
		d.cut = f.CutBlobAfter
	}
	return d
}

// countCut records one connection cut against MaxFaults.
func (fs *faultState) countCut() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.injected++
}
