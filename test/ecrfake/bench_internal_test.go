package ecrfake

import (
	"os"
	"testing"
	"time"
)

// TestLargeImageSmoke is a manual check of AddImage's cost for big images:
// ECRFAKE_LARGE_MB=1024 go test -run TestLargeImageSmoke ./test/ecrfake/
func TestLargeImageSmoke(t *testing.T) {
	mb := os.Getenv("ECRFAKE_LARGE_MB")
	if mb == "" {
		t.Skip("set ECRFAKE_LARGE_MB to time AddImage and an import of an image that large")
	}
	var n int64
	for _, c := range mb {
		n = n*10 + int64(c-'0')
	}
	s, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	begin := time.Now()
	img, err := s.AddImage("docker.io", "bench/big:v1", 4, n<<20/4)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("AddImage %d MiB: %v", n, time.Since(begin))
	begin = time.Now()
	if _, rerr := s.resolveManifest(t.Context(), "docker-hub/bench/big", "v1"); rerr != nil {
		t.Fatal(rerr)
	}
	t.Logf("import: %v (digest %s)", time.Since(begin), img.Digest)
}
