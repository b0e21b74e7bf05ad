package credentials

import (
	"errors"
	"net/url"
	"regexp"
	"sync"
)

// Errors a caller (or a person) acts on. A [TokenAPI] wraps the first
// three where they apply; [Provider.Get] passes them on.
var (
	// ErrNoCredentials reports that the AWS SDK found no credentials.
	ErrNoCredentials = errors.New("no AWS credentials found")
	// ErrAccessDenied reports that AWS rejected the caller's credentials or
	// the caller may not call GetAuthorizationToken.
	ErrAccessDenied = errors.New("access denied")
	// ErrRegionUnknown reports a registry whose region is not known.
	ErrRegionUnknown = errors.New("region unknown")
	// ErrBadToken reports a token that is not base64 of "user:password".
	ErrBadToken = errors.New("malformed authorization token")
)

// redactedError keeps the error chain (for errors.Is) but prints a
// message with secrets removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// RedactError returns err with its message passed through [Redact],
// keeping its chain for errors.Is and errors.As.
func RedactError(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: Redact(err.Error()), err: err}
}

var redactPatterns = sync.OnceValue(func() []*regexp.Regexp {
	return []*regexp.Regexp{
		// AWS access key IDs and other unique IDs (AKIA, ASIA, AROA, ...).
		regexp.MustCompile(`\b(AKIA|ASIA|AIDA|AROA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA)[A-Z0-9]{12,}\b`),
		// URL queries (presigned URLs carry credentials there).
		regexp.MustCompile(`(https?://[^\s?"']*)\?[^\s"']*`),
		// Long base64 or JWT-like runs (tokens, passwords, session tokens).
		regexp.MustCompile(`[A-Za-z0-9+/_\-.]{80,}={0,2}`),
	}
})

// Redact removes access key IDs, URL queries and long token-like strings
// from s, for text that goes to a log or an error message.
func Redact(s string) string {
	p := redactPatterns()
	s = p[0].ReplaceAllString(s, "${1}<redacted>")
	s = p[1].ReplaceAllString(s, "${1}?<redacted>")
	s = p[2].ReplaceAllString(s, "<redacted>")
	return s
}

// RedactURL returns u as text for a log or an error message: without its
// userinfo and fragment, and with a non-empty query (where presigned URLs
// carry their signature) replaced by "REDACTED". A nil u gives "".
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User, c.Fragment, c.RawFragment = nil, "", ""
	if c.RawQuery != "" {
		c.RawQuery = "REDACTED"
	}
	return c.String()
}
