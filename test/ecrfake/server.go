package ecrfake

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecr-ptc/ecr-ptc/test/testca"
)

// Server is a running fake ECR: API, registry, S3 stand-in and upstreams.
// Its methods are safe for concurrent use.
type Server struct {
	opts      Options
	ca        *testca.CA
	dir       string
	ownDir    bool
	log       *accessLog
	faults    faultState
	apiFaults apiFaultState

	apiSrv, regSrv, s3Srv *http.Server
	apiAddr, regAddr      string
	s3Addr                string
	s3Hostname            string
	s3Secret              string

	upstreams map[string]*Upstream // by host people type
	byURL     map[string]*Upstream // by upstreamRegistryUrl

	mu         sync.Mutex
	rules      []Rule
	policy     string
	secrets    map[string]bool      // Secrets Manager secret names
	tokens     map[string]time.Time // registry password -> expiry
	denyImport bool
	denyOps    map[string]bool
	repos      map[string]*repository
	importMu   map[string]*sync.Mutex
	now        func() time.Time

	transportOnce sync.Once
	transport     *http.Transport

	genMu     sync.Mutex
	generated map[string]*fileLayer // generated layers by seed key

	lazy     lazyState     // lazy layer import (lazy.go)
	authFail authFailState // failing upstream logins (upstreamauth.go)
	cdn      cdnState      // first pulls redirected to the upstream (cdn.go)
	ec2      ec2State      // the VPC the EC2 API describes (ec2.go)

	closeOnce sync.Once
}

// Start starts every listener of the fake on loopback and seeds the
// upstreams. Close it when done.
func Start(ctx context.Context, o Options) (*Server, error) {
	o = o.withDefaults()
	s := &Server{
		opts:       o,
		log:        newAccessLog(o.LogWriter),
		s3Hostname: fmt.Sprintf("prod-%s-starport-layer-bucket.s3.%s.amazonaws.com", o.Region, o.Region),
		upstreams:  map[string]*Upstream{},
		byURL:      map[string]*Upstream{},
		tokens:     map[string]time.Time{},
		denyOps:    map[string]bool{},
		repos:      map[string]*repository{},
		importMu:   map[string]*sync.Mutex{},
		now:        time.Now,
		generated:  map[string]*fileLayer{},
		secrets:    map[string]bool{},
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("generate s3 signing secret: %w", err)
	}
	s.s3Secret = hex.EncodeToString(secret)
	now := s.now()
	for _, r := range o.Rules {
		if r.UpstreamRegistry == "" {
			r.UpstreamRegistry = upstreamRegistryFor(r.UpstreamRegistryURL)
		}
		if r.CreatedAt.IsZero() {
			r.CreatedAt = now
		}
		if r.UpdatedAt.IsZero() {
			r.UpdatedAt = r.CreatedAt
		}
		s.rules = append(s.rules, r)
		if o.Secrets == nil && r.CredentialArn != "" {
			s.secrets[secretName(r.CredentialArn)] = true
		}
	}
	for _, name := range o.Secrets {
		s.secrets[name] = true
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "ecrfake-")
		if err != nil {
			return nil, fmt.Errorf("create store directory: %w", err)
		}
		s.dir, s.ownDir = d, true
	} else {
		s.dir = o.Dir
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "blobs"), 0o755); err != nil {
		_ = s.cleanup() // the failure to report is MkdirAll's
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	ca, err := testca.New()
	if err != nil {
		return nil, err
	}
	s.ca = ca
	cert, err := ca.Issue("127.0.0.1", "localhost", o.RegistryHostname, s.s3Hostname)
	if err != nil {
		return nil, err
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}

	var lc net.ListenConfig
	apiLn, err := lc.Listen(ctx, "tcp", o.APIListen)
	if err != nil {
		return nil, fmt.Errorf("listen for the ecr api on %q: %w", o.APIListen, err)
	}
	s.apiAddr = apiLn.Addr().String()
	s.apiSrv = newHTTPServer(s.middleware("api", http.HandlerFunc(s.serveAPI)), nil)
	go serve(s.apiSrv, apiLn)

	regLn, err := lc.Listen(ctx, "tcp", o.RegistryListen)
	if err != nil {
		return nil, fmt.Errorf("listen for the registry on %q: %w", o.RegistryListen, err)
	}
	s.regAddr = regLn.Addr().String()
	s.regSrv = newHTTPServer(s.middleware("registry", http.HandlerFunc(s.serveRegistry)), tlsConf)
	go serve(s.regSrv, tls.NewListener(regLn, tlsConf))

	s3Ln, err := lc.Listen(ctx, "tcp", o.S3Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for the s3 stand-in on %q: %w", o.S3Listen, err)
	}
	s.s3Addr = s3Ln.Addr().String()
	s.s3Srv = newHTTPServer(s.middleware("s3", http.HandlerFunc(s.serveS3)), tlsConf)
	go serve(s.s3Srv, tls.NewListener(s3Ln, tlsConf))

	if err := s.startUpstreams(ctx); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// newHTTPServer returns a server speaking HTTP/1.1 only, so that a cut
// connection is a cut TCP connection.
func newHTTPServer(h http.Handler, tlsConf *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 30 * time.Second,
	}
}

// serve runs srv on ln until Close. Serve only returns early when the
// listener fails, which the fake's clients then see as refused connections.
func serve(srv *http.Server, ln net.Listener) {
	_ = srv.Serve(ln)
}

// Close stops every listener and upstream and removes the temporary store.
func (s *Server) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		for _, u := range s.upstreams {
			u.Stop()
		}
		for _, srv := range []*http.Server{s.apiSrv, s.regSrv, s.s3Srv} {
			if srv != nil {
				if err := srv.Close(); err != nil {
					errs = append(errs, err)
				}
			}
		}
		s.transportOnce.Do(func() {}) // synchronise with HTTPClient
		if s.transport != nil {
			s.transport.CloseIdleConnections()
		}
		errs = append(errs, s.cleanup())
	})
	return errors.Join(errs...)
}

func (s *Server) cleanup() error {
	if s.ownDir && s.dir != "" {
		if err := os.RemoveAll(s.dir); err != nil {
			return fmt.Errorf("remove store directory: %w", err)
		}
	}
	return nil
}

// Options returns the options the server runs with, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// APIURL is the ECR API endpoint, "http://127.0.0.1:P": the value for
// AWS_ENDPOINT_URL_ECR (and AWS_ENDPOINT_URL_ECR_PUBLIC).
func (s *Server) APIURL() string { return "http://" + s.apiAddr }

// RegistryHost is "<RegistryHostname>:<port>", the host of proxyEndpoint.
// The port is left out when it is 443.
func (s *Server) RegistryHost() string { return hostWithPort(s.opts.RegistryHostname, s.regAddr) }

// RegistryAddr is the registry's loopback address, "127.0.0.1:<port>".
func (s *Server) RegistryAddr() string { return s.regAddr }

// S3Host is "<bucket hostname>:<port>", the host of the redirect URLs blob
// GETs answer with. The port is left out when it is 443.
func (s *Server) S3Host() string { return hostWithPort(s.s3Hostname, s.s3Addr) }

// S3Addr is the S3 stand-in's loopback address, "127.0.0.1:<port>".
func (s *Server) S3Addr() string { return s.s3Addr }

// CACertPEM is the PEM certificate of the CA that signed the registry and
// S3 certificates (SANs: 127.0.0.1, localhost, RegistryHostname, the S3 hostname).
func (s *Server) CACertPEM() []byte { return s.ca.CertPEM() }

// CA returns the CA of the fake, so tests can issue more certificates that
// clients of the fake already trust.
func (s *Server) CA() *testca.CA { return s.ca }

// ProxyEndpoint is the proxyEndpoint GetAuthorizationToken returns.
func (s *Server) ProxyEndpoint() string { return "https://" + s.RegistryHost() }

// Env returns the environment that points AWS SDKs and CLIs at the fake.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_ECR=" + s.APIURL(),
		"AWS_ENDPOINT_URL_ECR_PUBLIC=" + s.APIURL(),
		"AWS_ENDPOINT_URL_STS=" + s.APIURL(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + s.APIURL(),
		"AWS_ENDPOINT_URL_EC2=" + s.APIURL(),
		"AWS_ACCESS_KEY_ID=" + s.opts.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + s.opts.SecretAccessKey,
		"AWS_REGION=" + s.opts.Region,
		"AWS_DEFAULT_REGION=" + s.opts.Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// HostsEntries maps the fake's hostnames to 127.0.0.1, for an /etc/hosts
// bind-mounted inside a private mount namespace.
func (s *Server) HostsEntries() map[string]string {
	return map[string]string{
		s.opts.RegistryHostname: "127.0.0.1",
		s.s3Hostname:            "127.0.0.1",
	}
}

// HTTPClient returns a client for in-process tests: it trusts the fake's CA
// and dials RegistryHostname and the S3 hostname to loopback. Every client
// shares one transport, closed by Close.
func (s *Server) HTTPClient() *http.Client {
	s.transportOnce.Do(func() {
		names := map[string]bool{s.opts.RegistryHostname: true, s.s3Hostname: true}
		d := &net.Dialer{Timeout: 10 * time.Second}
		s.transport = &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, err := net.SplitHostPort(addr)
				if err == nil && names[host] {
					addr = net.JoinHostPort("127.0.0.1", port)
				}
				return d.DialContext(ctx, network, addr)
			},
			TLSClientConfig:     &tls.Config{RootCAs: s.ca.Pool(), MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 8,
		}
	})
	return &http.Client{Transport: s.transport}
}

// DenyImport simulates a principal lacking ecr:BatchImportUpstreamImage
// (and ecr:CreateRepository) in its IAM policies: while set, an image not
// yet in the cache cannot be pulled through it, unless the registry policy
// (PutRegistryPolicy) grants the caller ecr:BatchImportUpstreamImage on the
// repository, and ecr:CreateRepository too when the repository does not
// exist yet, as a registry policy does on ECR.
func (s *Server) DenyImport(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denyImport = deny
}

// DenyOperation makes the API answer AccessDeniedException to operation
// (e.g. "DescribePullThroughCacheRules") while deny is set.
func (s *Server) DenyOperation(operation string, deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denyOps[operation] = deny
}

// SetFaults replaces the injected faults; Faults{} turns them off.
func (s *Server) SetFaults(f Faults) { s.faults.set(f) }

// IssueToken issues a registry password as GetAuthorizationToken would,
// without an API call, for tests and demos. The registry accepts
// Basic AWS:<password> until expires.
func (s *Server) IssueToken() (password string, expires time.Time) { return s.newToken() }

// RevokeTokens makes every registry token issued so far invalid.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Log returns a copy of the access log of every listener.
func (s *Server) Log() []LogEntry { return s.log.snapshot() }

// APICalls returns how many times the ECR API operation was called
// (whatever the outcome, once the signature was checked or refused).
func (s *Server) APICalls(operation string) int { return s.log.opCount(operation) }

// Requests counts log entries of listener whose path contains pathSubstr
// and, when status is not 0, whose status equals it.
func (s *Server) Requests(listener, pathSubstr string, status int) int {
	n := 0
	for _, e := range s.log.snapshot() {
		if e.Listener == listener && strings.Contains(e.Path, pathSubstr) && (status == 0 || e.Status == status) {
			n++
		}
	}
	return n
}

// BytesServed is the sum of response body bytes written by listener.
func (s *Server) BytesServed(listener string) int64 {
	var n int64
	for _, e := range s.log.snapshot() {
		if e.Listener == listener {
			n += e.Bytes
		}
	}
	return n
}

// Rules returns the current pull-through cache rules.
func (s *Server) Rules() []Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Rule(nil), s.rules...)
}

func hostWithPort(hostname, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "443" {
		return hostname
	}
	return net.JoinHostPort(hostname, port)
}

// recorder captures status and body size for the access log.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// reqInfo is filled in by handlers for the access log.
type reqInfo struct {
	operation string
	auth      string
	fault     string
	cut       int64
	slow      time.Duration
}

type reqInfoKey struct{}

func info(r *http.Request) *reqInfo {
	if ri, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// middleware logs every request and injects faults on the registry and S3 listeners.
func (s *Server) middleware(listener string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &reqInfo{auth: "none"}
		if strings.HasPrefix(listener, "upstream:") {
			ri.auth = s.upstreamAuth(r)
		}
		r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri))
		rec := &recorder{ResponseWriter: w}
		start := s.now()
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			s.log.add(LogEntry{
				Time: start, Listener: listener, Method: r.Method, Path: r.URL.Path,
				Query: redactQuery(r.URL.RawQuery), Status: status, Bytes: rec.bytes,
				Operation: ri.operation, Auth: ri.auth, Fault: ri.fault,
			})
		}()
		if listener == "api" && s.apiFault(rec, r, ri) {
			return
		}
		if listener == "registry" || listener == "s3" {
			d := s.faults.decide(listener, r.URL.Path)
			if d.latency > 0 {
				ri.fault = "latency"
				t := time.NewTimer(d.latency)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					return
				}
			}
			switch d.status {
			case "5xx":
				ri.fault = "5xx"
				if listener == "s3" {
					writeS3Error(rec, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
				} else {
					writeRegistryError(rec, http.StatusInternalServerError, "UNKNOWN", "injected fault: internal server error")
				}
				return
			case "429":
				ri.fault = "429"
				if listener == "s3" {
					writeS3Error(rec, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
				} else {
					rec.Header().Set("Retry-After", strconv.Itoa(1))
					writeRegistryError(rec, http.StatusTooManyRequests, "TOOMANYREQUESTS", "Rate exceeded")
				}
				return
			}
			if d.status == "403" {
				ri.fault = "403"
				writeS3Error(rec, http.StatusForbidden, "AccessDenied", "Request has expired")
				return
			}
			ri.cut = d.cut
			ri.slow = d.slow
		}
		next.ServeHTTP(rec, r)
	})
}
