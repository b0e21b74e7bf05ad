package ecrfake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// s3AccessKeyID is the key id that appears in the presigned URLs. Its secret
// is random per Server, so only the fake can sign URLs it accepts.
const s3AccessKeyID = "ASIAECRFAKESTARPORT0"

// presign returns the S3 URL a blob GET of name@dgst redirects to, signed at
// t with SigV4 query parameters (like ECR's starport layer bucket URLs).
func (s *Server) presign(name, dgst string, t time.Time) string {
	sum := sha256.Sum256([]byte(s.opts.AccountID + "/" + name))
	key := fmt.Sprintf("/%x-%s-%x/%s", sum[:2], s.opts.AccountID, sum[2:10], strings.TrimPrefix(dgst, "sha256:"))
	t = t.UTC()
	scope := credentialScope{AccessKeyID: s3AccessKeyID, Date: t.Format("20060102"), Region: s.opts.Region, Service: "s3"}
	q := url.Values{}
	q.Set("X-Amz-Algorithm", sigV4Algorithm)
	q.Set("X-Amz-Credential", s3AccessKeyID+"/"+scope.scope())
	q.Set("X-Amz-Date", t.Format(amzDateFormat))
	q.Set("X-Amz-Expires", strconv.Itoa(int(s.opts.PresignTTL/time.Second)))
	q.Set("X-Amz-SignedHeaders", "host")
	host := s.S3Host()
	canon := canonicalRequest(http.MethodGet, key, q.Encode(), []header{{"host", []string{host}}}, "UNSIGNED-PAYLOAD", "")
	q.Set("X-Amz-Signature", sign(s.s3Secret, scope, stringToSign(t.Format(amzDateFormat), scope, canon)))
	return "https://" + host + key + "?" + q.Encode()
}

// s3Error is the XML error body of S3.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	ArgName   string   `xml:"ArgumentName,omitempty"`
	ArgValue  string   `xml:"ArgumentValue,omitempty"`
	RequestID string   `xml:"RequestId"`
	HostID    string   `xml:"HostId"`
}

func writeS3Error(w http.ResponseWriter, status int, code, msg string) {
	writeS3ErrorArg(w, status, s3Error{Code: code, Message: msg})
}

func writeS3ErrorArg(w http.ResponseWriter, status int, e s3Error) {
	e.RequestID = strings.ToUpper(requestID()[:16])
	e.HostID = "ecrfake"
	b, _ := xml.Marshal(e)
	b = append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// serveS3 stands in for the S3 bucket behind ECR's layer redirects: it
// accepts only the fake's own presigned GET URLs, before they expire, and
// serves byte ranges.
func (s *Server) serveS3(w http.ResponseWriter, r *http.Request) {
	ri := info(r)
	q := r.URL.Query()
	if r.Header.Get("Authorization") != "" {
		// S3 refuses a request that carries both a presigned query and an
		// Authorization header; a client that forwards the registry's Basic
		// credentials to the redirect target gets exactly this.
		ri.auth = "authorization-header"
		writeS3ErrorArg(w, http.StatusBadRequest, s3Error{
			Code:     "InvalidArgument",
			Message:  "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
			ArgName:  "Authorization",
			ArgValue: "REDACTED",
		})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeS3Error(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		return
	}
	if q.Get("X-Amz-Algorithm") == "" {
		writeS3Error(w, http.StatusForbidden, "AccessDenied", "Access Denied")
		return
	}
	ri.auth = "presigned-invalid"
	if q.Get("X-Amz-Algorithm") != sigV4Algorithm {
		writeS3Error(w, http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
		return
	}
	scope, err := parseCredential(q.Get("X-Amz-Credential"))
	if err != nil || scope.AccessKeyID != s3AccessKeyID {
		writeS3Error(w, http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		return
	}
	amzDate := q.Get("X-Amz-Date")
	signedAt, err := time.Parse(amzDateFormat, amzDate)
	expires, err2 := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || err2 != nil || expires < 1 || expires > 604800 || !strings.HasPrefix(amzDate, scope.Date) {
		writeS3Error(w, http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Amz-Date, X-Amz-Expires or X-Amz-Credential is malformed")
		return
	}
	if q.Get("X-Amz-SignedHeaders") != "host" {
		writeS3Error(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
		return
	}
	canon := canonicalRequest(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, []header{{"host", []string{r.Host}}}, "UNSIGNED-PAYLOAD", "X-Amz-Signature")
	want := sign(s.s3Secret, scope, stringToSign(amzDate, scope, canon))
	if want != strings.ToLower(q.Get("X-Amz-Signature")) {
		writeS3Error(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
		return
	}
	if now := s.now(); now.After(signedAt.Add(time.Duration(expires) * time.Second)) {
		writeS3Error(w, http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	}
	ri.auth = "presigned"
	hexDigest := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	if _, err := hex.DecodeString(hexDigest); err != nil || len(hexDigest) != 64 {
		writeS3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	f, err := os.Open(s.blobPath("sha256:" + hexDigest))
	if err != nil {
		writeS3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		writeS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Etag", `"`+hexDigest[:32]+`"`)
	w.Header().Set("X-Amz-Server-Side-Encryption", "AES256")
	if ri.slow > 0 && r.Method == http.MethodGet {
		ri.fault = "slow"
		w = &slowWriter{ResponseWriter: w, pause: ri.slow, ctx: r.Context()}
	}
	if ri.cut > 0 && r.Method == http.MethodGet {
		w = &cutWriter{ResponseWriter: w, left: ri.cut, onCut: func() {
			ri.fault = "cut"
			s.faults.countCut()
		}}
	}
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// cutWriter aborts the connection once left bytes of body were written.
type cutWriter struct {
	http.ResponseWriter
	left  int64
	onCut func()
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if int64(len(b)) < c.left {
		n, err := c.ResponseWriter.Write(b)
		c.left -= int64(n)
		return n, err
	}
	n, _ := c.ResponseWriter.Write(b[:c.left])
	c.left = 0
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	c.onCut()
	_ = n
	// ErrAbortHandler makes net/http close the connection without completing
	// the response: the client sees a short body and a closed socket.
	panic(http.ErrAbortHandler)
}
