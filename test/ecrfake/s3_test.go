package ecrfake

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// startInternal starts a fake and imports docker.io's busybox through it.
func startInternal(t *testing.T, o Options) (*Server, string) {
	t.Helper()
	s, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, rerr := s.resolveManifest(t.Context(), "docker-hub/library/busybox", "latest"); rerr != nil {
		t.Fatalf("import busybox: %v", rerr)
	}
	img := s.Upstream("docker.io").Image("library/busybox:latest")
	return s, img.Layers[0]
}

func TestS3PresignedURLs(t *testing.T) {
	t.Parallel()
	s, layer := startInternal(t, Options{})
	size, err := s.blobSize(layer)
	if err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(s.blobPath(layer))
	if err != nil {
		t.Fatal(err)
	}
	good := s.presign("docker-hub/library/busybox", layer, time.Now())
	tamper := func(key, val string) string {
		u, _ := url.Parse(good)
		q := u.Query()
		q.Set(key, val)
		u.RawQuery = q.Encode()
		return u.String()
	}
	tests := []struct {
		name       string
		url        string
		header     map[string]string
		wantStatus int
		wantCode   string
		wantBody   []byte
	}{
		{name: "presigned", url: good, wantStatus: http.StatusOK, wantBody: full},
		{name: "range", url: good, header: map[string]string{"Range": "bytes=10-19"}, wantStatus: http.StatusPartialContent, wantBody: full[10:20]},
		{name: "open-ended range", url: good, header: map[string]string{"Range": "bytes=100-"}, wantStatus: http.StatusPartialContent, wantBody: full[100:]},
		{name: "with authorization header", url: good, header: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:x"))}, wantStatus: http.StatusBadRequest, wantCode: "InvalidArgument"},
		{name: "expired", url: s.presign("docker-hub/library/busybox", layer, time.Now().Add(-2*time.Hour)), wantStatus: http.StatusForbidden, wantCode: "AccessDenied"},
		{name: "tampered signature", url: tamper("X-Amz-Signature", strings.Repeat("0", 64)), wantStatus: http.StatusForbidden, wantCode: "SignatureDoesNotMatch"},
		{name: "longer expiry", url: tamper("X-Amz-Expires", "604800"), wantStatus: http.StatusForbidden, wantCode: "SignatureDoesNotMatch"},
		{name: "no signature", url: "https://" + s.S3Host() + "/x/" + strings.TrimPrefix(layer, "sha256:"), wantStatus: http.StatusForbidden, wantCode: "AccessDenied"},
	}
	client := s.HTTPClient()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, tc.url, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantBody != nil && string(body) != string(tc.wantBody) {
				t.Errorf("body: got %d bytes, want %d", len(body), len(tc.wantBody))
			}
			if tc.wantCode != "" {
				var e struct{ Code, Message string }
				if err := xml.Unmarshal(body, &e); err != nil || e.Code != tc.wantCode {
					t.Errorf("error %q (%v), want code %q: %s", e.Code, err, tc.wantCode, body)
				}
			}
		})
	}
	_ = size
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s, layer := startInternal(t, Options{})
	pw, _ := s.newToken()
	client := s.HTTPClient()
	do := func(t *testing.T, path string) (*http.Response, []byte, error) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+s.RegistryHost()+path, nil)
		req.SetBasicAuth("AWS", pw)
		req.Header.Set("Accept", mediaDockerManifest)
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	manifestPath := "/v2/docker-hub/library/busybox/manifests/latest"
	blobPath := "/v2/docker-hub/library/busybox/blobs/" + layer

	t.Run("5xx", func(t *testing.T) {
		s.SetFaults(Faults{ErrorRate5xx: 1, Paths: []string{"/manifests/"}})
		defer s.SetFaults(Faults{})
		resp, _, err := do(t, manifestPath)
		if err != nil || resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("got %v %v, want 500", resp, err)
		}
		if resp, _, _ := do(t, "/v2/"); resp.StatusCode != http.StatusOK {
			t.Errorf("/v2/ is outside Paths but got %d", resp.StatusCode)
		}
	})
	t.Run("429", func(t *testing.T) {
		s.SetFaults(Faults{ErrorRate429: 1})
		defer s.SetFaults(Faults{})
		resp, body, err := do(t, manifestPath)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "TOOMANYREQUESTS") {
			t.Fatalf("got %v %s %v, want 429 TOOMANYREQUESTS with Retry-After", resp.Status, body, err)
		}
	})
	t.Run("share is deterministic", func(t *testing.T) {
		count := func() int {
			s.SetFaults(Faults{ErrorRate5xx: 0.5, Seed: 7, Paths: []string{"/manifests/"}})
			n := 0
			for range 20 {
				resp, _, err := do(t, manifestPath)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode == http.StatusInternalServerError {
					n++
				}
			}
			return n
		}
		a, b := count(), count()
		s.SetFaults(Faults{})
		if a != b || a == 0 || a == 20 {
			t.Fatalf("failures %d then %d of 20, want the same share strictly between 0 and 20", a, b)
		}
	})
	t.Run("max faults", func(t *testing.T) {
		s.SetFaults(Faults{ErrorRate5xx: 1, MaxFaults: 2})
		defer s.SetFaults(Faults{})
		var codes []int
		for range 3 {
			resp, _, _ := do(t, manifestPath)
			codes = append(codes, resp.StatusCode)
		}
		if codes[0] != 500 || codes[1] != 500 || codes[2] != 200 {
			t.Fatalf("statuses %v, want [500 500 200]", codes)
		}
	})
	t.Run("latency", func(t *testing.T) {
		s.SetFaults(Faults{Latency: 200 * time.Millisecond, Listeners: []string{"registry"}})
		defer s.SetFaults(Faults{})
		begin := time.Now()
		if resp, _, err := do(t, manifestPath); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%v %v", resp, err)
		}
		if d := time.Since(begin); d < 200*time.Millisecond {
			t.Fatalf("answered in %v, want at least 200ms", d)
		}
	})
	t.Run("cut blob", func(t *testing.T) {
		s.SetFaults(Faults{CutBlobAfter: 100})
		defer s.SetFaults(Faults{})
		resp, body, err := do(t, blobPath)
		if err == nil {
			t.Fatalf("read whole blob (%d bytes, status %d), want a cut connection", len(body), resp.StatusCode)
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "unexpected EOF") {
			t.Logf("cut error: %v", err)
		}
		cut := false
		for _, e := range s.Log() {
			if e.Listener == "s3" && e.Fault == "cut" {
				cut = true
			}
		}
		if !cut {
			t.Errorf("access log has no cut s3 request")
		}
	})
}

func TestDeterministicSeed(t *testing.T) {
	t.Parallel()
	a, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for host := range seedImages {
		ia, ib := a.Upstream(host).Images(), b.Upstream(host).Images()
		if len(ia) == 0 || len(ia) != len(ib) {
			t.Fatalf("%s: %d and %d images", host, len(ia), len(ib))
		}
		for i := range ia {
			if ia[i].Digest != ib[i].Digest {
				t.Errorf("%s %s:%s: digests %s and %s differ between runs", host, ia[i].Repository, ia[i].Tag, ia[i].Digest, ib[i].Digest)
			}
		}
	}
}
