package testca_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/test/testca"
)

func TestIssueVerifies(t *testing.T) {
	t.Parallel()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("127.0.0.1", "localhost", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "*.s3.us-east-1.amazonaws.com")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		host    string
		wantErr bool
	}{
		{name: "ip", host: "127.0.0.1"},
		{name: "localhost", host: "localhost"},
		{name: "ecr host", host: "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{name: "wildcard", host: "bucket.s3.us-east-1.amazonaws.com"},
		{name: "other name", host: "example.com", wantErr: true},
		{name: "other ip", host: "10.0.0.1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: tc.host, Roots: ca.Pool()})
			if (err != nil) != tc.wantErr {
				t.Fatalf("verify %q: err = %v, wantErr %v", tc.host, err, tc.wantErr)
			}
		})
	}
}

func TestIssueNoHosts(t *testing.T) {
	t.Parallel()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue(); err == nil {
		t.Fatal("Issue() without hosts: want error")
	}
}

func TestTLSServerAndCertFile(t *testing.T) {
	t.Parallel()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()

	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := ca.WriteCertFile(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(data); b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("ca file is not a PEM certificate: %q", data)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(data)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("https get with ca from file: %v", err)
	}
	resp.Body.Close()
}
