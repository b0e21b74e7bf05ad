package credentials

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
)

// secretsFrom derives secret-shaped strings from fuzz input: an ECR-sized
// base64 token, an access key ID and a hex signature.
func secretsFrom(seed []byte) (token, keyID, signature string) {
	raw := append([]byte("ecr-token:"), seed...)
	for len(raw) < 64 {
		raw = append(raw, byte(len(raw)*31))
	}
	token = base64.StdEncoding.EncodeToString(raw)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	id := []byte("AKIA")
	for i := range 16 {
		b := byte(i)
		if i < len(seed) {
			b = seed[i]
		}
		id = append(id, alphabet[int(b)%len(alphabet)])
	}
	return token, string(id), hex.EncodeToString(raw)[:64]
}

// FuzzRedact inserts a token, an access key ID and a presigned URL's
// signature into arbitrary text and checks that Redact removes each.
func FuzzRedact(f *testing.F) {
	f.Add("get token for", "failed", []byte("password"))
	f.Add("", "", []byte{})
	f.Add("error: https://x/y?", `"quoted"`, []byte("AKIA\x00\xff"))
	f.Fuzz(func(t *testing.T, before, after string, seed []byte) {
		token, keyID, sig := secretsFrom(seed)
		presigned := "https://bucket.s3.amazonaws.com/layer?X-Amz-Signature=" + sig
		in := before + " " + token + " " + keyID + " " + presigned + " " + after
		out := Redact(in)
		for _, secret := range []string{token, keyID, sig} {
			if strings.Contains(out, secret) {
				t.Fatalf("Redact(%q) = %q still holds %q", in, out, secret)
			}
		}
	})
}

// FuzzRedactURL puts a password in the userinfo, a signature in the query
// and a token in the fragment of a URL and checks that RedactURL drops
// all three and keeps the host.
func FuzzRedactURL(f *testing.F) {
	f.Add("registry.example", "/v2/library/busybox/blobs/sha256:abc", []byte("pw"))
	f.Add("127.0.0.1:5000", "", []byte{})
	f.Fuzz(func(t *testing.T, host, path string, seed []byte) {
		token, _, sig := secretsFrom(seed)
		u := &url.URL{
			Scheme: "https", Host: host, Path: path,
			User:     url.UserPassword("AWS", token),
			RawQuery: "X-Amz-Signature=" + sig, Fragment: token,
		}
		out := RedactURL(u)
		for _, secret := range []string{token, url.QueryEscape(token), sig} {
			if strings.Contains(out, secret) {
				t.Fatalf("RedactURL(%q) = %q still holds %q", u, out, secret)
			}
		}
		if !strings.Contains(out, "REDACTED") {
			t.Fatalf("RedactURL(%q) = %q, want the query replaced by REDACTED", u, out)
		}
	})
}
