package ecrfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// sigV4Algorithm is the only signing algorithm the fake accepts.
const sigV4Algorithm = "AWS4-HMAC-SHA256"

// amzDateFormat is the layout of X-Amz-Date.
const amzDateFormat = "20060102T150405Z"

// errMalformedAuth is returned by parseAuthorization for a header that is not
// a well-formed SigV4 Authorization value.
var errMalformedAuth = errors.New("malformed sigv4 authorization header")

// credentialScope is the part of a SigV4 credential after the access key:
// <date>/<region>/<service>/aws4_request.
type credentialScope struct {
	AccessKeyID string
	Date        string // yyyymmdd
	Region      string
	Service     string
}

func (c credentialScope) scope() string {
	return c.Date + "/" + c.Region + "/" + c.Service + "/aws4_request"
}

// sigV4Auth is a parsed Authorization header.
type sigV4Auth struct {
	Credential    credentialScope
	SignedHeaders []string // lower case, in the order given
	Signature     string   // lower-case hex
}

// parseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ecr/aws4_request, SignedHeaders=host;x-amz-date, Signature=<hex>".
func parseAuthorization(h string) (sigV4Auth, error) {
	var a sigV4Auth
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != sigV4Algorithm {
		return a, fmt.Errorf("%w: algorithm must be %s", errMalformedAuth, sigV4Algorithm)
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return a, fmt.Errorf("%w: component %q is not key=value", errMalformedAuth, part)
		}
		if seen[k] {
			return a, fmt.Errorf("%w: component %q repeated", errMalformedAuth, k)
		}
		seen[k] = true
		switch k {
		case "Credential":
			c, err := parseCredential(v)
			if err != nil {
				return a, err
			}
			a.Credential = c
		case "SignedHeaders":
			for _, sh := range strings.Split(v, ";") {
				if sh == "" || sh != strings.ToLower(sh) {
					return a, fmt.Errorf("%w: signed header %q must be a non-empty lower-case name", errMalformedAuth, sh)
				}
				a.SignedHeaders = append(a.SignedHeaders, sh)
			}
		case "Signature":
			if len(v) != 64 {
				return a, fmt.Errorf("%w: signature must be 64 hex digits", errMalformedAuth)
			}
			if _, err := hex.DecodeString(v); err != nil {
				return a, fmt.Errorf("%w: signature is not hex", errMalformedAuth)
			}
			a.Signature = strings.ToLower(v)
		default:
			return a, fmt.Errorf("%w: unknown component %q", errMalformedAuth, k)
		}
	}
	if !seen["Credential"] || !seen["SignedHeaders"] || !seen["Signature"] {
		return a, fmt.Errorf("%w: need Credential, SignedHeaders and Signature", errMalformedAuth)
	}
	return a, nil
}

// parseCredential parses "AKID/20240101/us-east-1/ecr/aws4_request".
func parseCredential(v string) (credentialScope, error) {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return credentialScope{}, fmt.Errorf("%w: credential %q must be <key>/<date>/<region>/<service>/aws4_request", errMalformedAuth, v)
	}
	for _, p := range parts[:4] {
		if p == "" {
			return credentialScope{}, fmt.Errorf("%w: credential %q has an empty part", errMalformedAuth, v)
		}
	}
	if _, err := time.Parse("20060102", parts[1]); err != nil {
		return credentialScope{}, fmt.Errorf("%w: credential date %q is not yyyymmdd", errMalformedAuth, parts[1])
	}
	return credentialScope{AccessKeyID: parts[0], Date: parts[1], Region: parts[2], Service: parts[3]}, nil
}

// header is one canonical header: lower-case name and its values.
type header struct {
	name   string
	values []string
}

// canonicalRequest builds the SigV4 canonical request.
func canonicalRequest(method, escapedPath, rawQuery string, headers []header, payloadHash string, skipQuery string) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('\n')
	if escapedPath == "" {
		escapedPath = "/"
	}
	b.WriteString(escapedPath)
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(rawQuery, skipQuery))
	b.WriteByte('\n')
	names := make([]string, 0, len(headers))
	for _, h := range headers {
		vals := make([]string, len(h.values))
		for i, v := range h.values {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(h.name)
		b.WriteByte(':')
		b.WriteString(strings.Join(vals, ","))
		b.WriteByte('\n')
		names = append(names, h.name)
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(names, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalQuery sorts and URI-encodes the query, leaving out skip.
func canonicalQuery(raw, skip string) string {
	if raw == "" {
		return ""
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return raw
	}
	type kv struct{ k, v string }
	var pairs []kv
	for k, vals := range v {
		if k == skip {
			continue
		}
		for _, val := range vals {
			pairs = append(pairs, kv{awsURIEncode(k), awsURIEncode(val)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// awsURIEncode percent-encodes everything but the unreserved characters.
func awsURIEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// stringToSign builds the SigV4 string to sign.
func stringToSign(amzDate string, scope credentialScope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return sigV4Algorithm + "\n" + amzDate + "\n" + scope.scope() + "\n" + hex.EncodeToString(sum[:])
}

// sign returns the hex SigV4 signature of sts with secret.
func sign(secret string, scope credentialScope, sts string) string {
	k := hmacSHA256([]byte("AWS4"+secret), scope.Date)
	k = hmacSHA256(k, scope.Region)
	k = hmacSHA256(k, scope.Service)
	k = hmacSHA256(k, "aws4_request")
	return hex.EncodeToString(hmacSHA256(k, sts))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
