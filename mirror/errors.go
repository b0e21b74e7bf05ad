package mirror

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// registryError is an error answer in the OCI distribution format:
// {"errors":[{"code":"NAME_UNKNOWN","message":"..."}]}.
type registryError struct {
	status  int
	code    string
	message string
	// reason is a short label for metrics and logs ("unmapped", "ecr_5xx", ...).
	reason string
	// retryAfter is passed on as Retry-After when set.
	retryAfter string
}

func (e *registryError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message)
}

func newRegistryError(status int, code, reason, format string, args ...any) *registryError {
	return &registryError{status: status, code: code, reason: reason, message: fmt.Sprintf(format, args...)}
}

func errNameInvalid(format string, args ...any) *registryError {
	return newRegistryError(http.StatusBadRequest, "NAME_INVALID", "bad_request", format, args...)
}

func errTagInvalid(format string, args ...any) *registryError {
	return newRegistryError(http.StatusBadRequest, "TAG_INVALID", "bad_request", format, args...)
}

func errDigestInvalid(format string, args ...any) *registryError {
	return newRegistryError(http.StatusBadRequest, "DIGEST_INVALID", "bad_request", format, args...)
}

func errUnsupported(format string, args ...any) *registryError {
	return newRegistryError(http.StatusNotFound, "UNSUPPORTED", "unsupported", format, args...)
}

// write sends the error. HEAD answers carry no body but the same status.
func (e *registryError) write(w http.ResponseWriter, r *http.Request) {
	body, _ := json.Marshal(struct {
		Errors []transport.Diagnostic `json:"errors"`
	}{Errors: []transport.Diagnostic{{Code: transport.ErrorCode(e.code), Message: e.message}}})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	if e.retryAfter != "" {
		h.Set("Retry-After", e.retryAfter)
	}
	if e.status == http.StatusMethodNotAllowed {
		h.Set("Allow", "GET, HEAD")
	}
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// send writes the error and returns what the request ended with, for
// logs and metrics.
func (e *registryError) send(w http.ResponseWriter, r *http.Request) (result, string) {
	e.write(w, r)
	return result{status: e.status, reason: e.reason}, e.message
}
