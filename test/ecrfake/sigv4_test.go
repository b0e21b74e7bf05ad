package ecrfake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func TestParseAuthorization(t *testing.T) {
	t.Parallel()
	sig := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		in      string
		wantErr bool
		want    sigV4Auth
	}{
		{
			name: "sdk form",
			in:   "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-target, Signature=" + sig,
			want: sigV4Auth{
				Credential:    credentialScope{AccessKeyID: "AKID", Date: "20240102", Region: "us-east-1", Service: "ecr"},
				SignedHeaders: []string{"content-length", "content-type", "host", "x-amz-date", "x-amz-target"},
				Signature:     sig,
			},
		},
		{name: "no spaces after commas", in: "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request,SignedHeaders=host,Signature=" + sig,
			want: sigV4Auth{Credential: credentialScope{"AKID", "20240102", "us-east-1", "ecr"}, SignedHeaders: []string{"host"}, Signature: sig}},
		{name: "empty", in: "", wantErr: true},
		{name: "other algorithm", in: "AWS4-HMAC-SHA512 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=" + sig, wantErr: true},
		{name: "basic", in: "Basic QVdTOng=", wantErr: true},
		{name: "missing signature", in: "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=host", wantErr: true},
		{name: "short signature", in: "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=abcd", wantErr: true},
		{name: "bad scope terminator", in: "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws5_request, SignedHeaders=host, Signature=" + sig, wantErr: true},
		{name: "bad date", in: "AWS4-HMAC-SHA256 Credential=AKID/2024-01-02/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=" + sig, wantErr: true},
		{name: "upper-case signed header", in: "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=Host, Signature=" + sig, wantErr: true},
		{name: "repeated component", in: "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=" + sig, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseAuthorization(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got.Credential != tc.want.Credential || got.Signature != tc.want.Signature || strings.Join(got.SignedHeaders, ";") != strings.Join(tc.want.SignedHeaders, ";") {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0f", 32))
	f.Add("AWS4-HMAC-SHA256 Credential=//////, SignedHeaders=;, Signature=")
	f.Add("Basic QVdTOng=")
	f.Fuzz(func(t *testing.T, in string) {
		a, err := parseAuthorization(in)
		if err != nil {
			return
		}
		if len(a.Signature) != 64 || a.Credential.AccessKeyID == "" || len(a.SignedHeaders) == 0 {
			t.Fatalf("accepted %q with incomplete result %+v", in, a)
		}
		for _, h := range a.SignedHeaders {
			if h == "" || h != strings.ToLower(h) {
				t.Fatalf("accepted signed header %q", h)
			}
		}
	})
}

// TestVerifyMatchesSDKSigner signs requests of several shapes with the AWS
// SDK's own signer and sends them to the API listener: the fake must accept
// every one, and refuse it once a signed part changes.
func TestVerifyMatchesSDKSigner(t *testing.T) {
	t.Parallel()
	s, err := Start(t.Context(), Options{Rules: []Rule{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: s.opts.AccessKeyID, SecretAccessKey: s.opts.SecretAccessKey}
	tests := []struct {
		name    string
		query   string
		body    string
		extra   map[string]string
		mutate  func(r *http.Request)
		wantErr bool
	}{
		{name: "plain", body: "{}"},
		{name: "query", query: "?b=2&a=1&a=0&sp=x%20y", body: "{}"},
		{name: "extra header with spaces", body: `{"maxResults": 5}`, extra: map[string]string{"X-Custom": "  a   b  "}},
		{name: "empty body", body: ""},
		{name: "changed target", body: "{}", mutate: func(r *http.Request) {
			r.Header.Set("X-Amz-Target", ecrTargetPrefix+"DescribeRepositories")
		}, wantErr: true},
		{name: "changed query", query: "?a=1", body: "{}", mutate: func(r *http.Request) { r.URL.RawQuery = "a=2" }, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.APIURL()+"/"+tc.query, bytes.NewReader([]byte(tc.body)))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", ecrTargetPrefix+"DescribePullThroughCacheRules")
			for k, v := range tc.extra {
				req.Header.Set(k, v)
			}
			sum := sha256.Sum256([]byte(tc.body))
			if err := signer.SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "ecr", s.opts.Region, time.Now()); err != nil {
				t.Fatal(err)
			}
			if tc.mutate != nil {
				tc.mutate(req)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.StatusCode != http.StatusOK; got != tc.wantErr {
				t.Fatalf("status %d (%s), wantErr %v", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), tc.wantErr)
			}
			if tc.wantErr && !strings.HasPrefix(resp.Header.Get("X-Amzn-ErrorType"), "InvalidSignatureException") {
				t.Fatalf("error type %q, want InvalidSignatureException", resp.Header.Get("X-Amzn-ErrorType"))
			}
		})
	}

	t.Run("clock skew", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.APIURL()+"/", strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", ecrTargetPrefix+"GetAuthorizationToken")
		sum := sha256.Sum256([]byte("{}"))
		signer.SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "ecr", s.opts.Region, time.Now().Add(-20*time.Minute))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("X-Amzn-ErrorType"), "InvalidSignatureException") {
			t.Fatalf("status %d %q, want 400 InvalidSignatureException", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
		}
	})
}
