package mirror

import (
	"io"
	"net/http"
	"testing"
)

func BenchmarkManifestHEAD(b *testing.B) {
	ecr := newFakeECRB(b)
	_, shim := newShimB(b, ecr)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	direct := ecr.srv.Client().Transport.(*http.Transport).Clone()
	direct.MaxIdleConnsPerHost = 64
	dc := &http.Client{Transport: direct}
	run := func(b *testing.B, c *http.Client, url string) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodHead, url, nil)
				req.SetBasicAuth("AWS", "token-0")
				resp, err := c.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	b.Run("direct", func(b *testing.B) { run(b, dc, ecr.srv.URL+"/v2/docker-hub/library/nginx/manifests/latest") })
	b.Run("shim", func(b *testing.B) { run(b, client, shim+"/v2/library/nginx/manifests/latest") })
}
