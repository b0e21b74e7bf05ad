package ecrfake

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// LogEntry is one request seen by one of the fake's listeners.
type LogEntry struct {
	Time time.Time
	// Listener is "api", "registry", "s3" or "upstream:<host>" (host as people
	// type it, e.g. "upstream:docker.io").
	Listener string
	Method   string
	Path     string
	// Query is the raw query with signatures, credentials and tokens redacted.
	Query  string
	Status int
	// Bytes is the number of response body bytes written.
	Bytes int64
	// Operation is the ECR API operation (api listener only), e.g. "GetAuthorizationToken".
	Operation string
	// Auth says how the request authenticated: "none", "basic",
	// "basic-invalid", "basic-expired", "other" (a scheme other than Basic),
	// "sigv4", "sigv4-invalid", "presigned", "presigned-invalid",
	// "authorization-header" (an S3 request that carried one); on an
	// upstream listener "ecr-token" (a token this fake issued), "basic",
	// "bearer" or "other".
	Auth string
	// Fault names the injected fault, if any: "latency", "5xx", "429", "cut",
	// "slow", "403" (S3), "hang" (API) or an API status such as "500".
	Fault string
}

// accessLog keeps entries and counters; safe for concurrent use.
type accessLog struct {
	mu      sync.Mutex
	entries []LogEntry
	ops     map[string]int
	w       io.Writer
}

func newAccessLog(w io.Writer) *accessLog {
	return &accessLog{ops: map[string]int{}, w: w}
}

func (l *accessLog) add(e LogEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
	if e.Listener == "api" && e.Operation != "" {
		l.ops[e.Operation]++
	}
	if l.w != nil {
		q := ""
		if e.Query != "" {
			q = "?" + e.Query
		}
		extra := ""
		if e.Operation != "" {
			extra += " op=" + e.Operation
		}
		if e.Fault != "" {
			extra += " fault=" + e.Fault
		}
		fmt.Fprintf(l.w, "%s %-22s %s %s%s -> %d %dB auth=%s%s\n",
			e.Time.UTC().Format("15:04:05.000"), e.Listener, e.Method, e.Path, q, e.Status, e.Bytes, e.Auth, extra)
	}
}

func (l *accessLog) snapshot() []LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LogEntry(nil), l.entries...)
}

func (l *accessLog) opCount(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ops[op]
}

// sensitiveQuery are query parameters whose values never reach the log.
var sensitiveQuery = map[string]bool{
	"x-amz-signature":      true,
	"x-amz-credential":     true,
	"x-amz-security-token": true,
	"signature":            true,
	"token":                true,
}

// redactQuery returns raw with the values of sensitive parameters replaced.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return "REDACTED-UNPARSABLE"
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, val := range v[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			if sensitiveQuery[strings.ToLower(k)] {
				val = "REDACTED"
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(val))
		}
	}
	return b.String()
}
