package ecrfake

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// APIFaults are injected into the AWS API listener (ECR, ECR Public, STS,
// Secrets Manager). The zero value injects nothing. Set them with
// Server.SetAPIFaults.
type APIFaults struct {
	// Hang makes matching requests accept the connection and never answer:
	// a VPC endpoint whose security group or policy blackholes the call. The
	// request ends when the client gives up, when the faults change, or
	// when the server closes.
	Hang bool
	// Status, when set, answers matching requests with this HTTP status and
	// the AWS error ECR sends with it: 429 ThrottlingException ("Rate
	// exceeded"), 500 InternalServerException, 503 ServiceUnavailableException.
	Status int
	// Operations, when set, limits the faults to these operations, such as
	// "GetAuthorizationToken". Default: every operation.
	Operations []string
}

// apiFaultState holds the API faults; release is closed when they change,
// which ends hanging requests.
type apiFaultState struct {
	mu      sync.Mutex
	f       APIFaults
	release chan struct{}
}

// SetAPIFaults replaces the API faults; APIFaults{} turns them off and
// releases hanging requests (they then get their normal answer).
func (s *Server) SetAPIFaults(f APIFaults) {
	st := &s.apiFaults
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.release != nil {
		close(st.release)
	}
	st.f = f
	st.release = make(chan struct{})
}

// apiFault injects the API faults into one request; true means it was
// answered (or hung up on) here.
func (s *Server) apiFault(w http.ResponseWriter, r *http.Request, ri *reqInfo) bool {
	st := &s.apiFaults
	st.mu.Lock()
	f, release := st.f, st.release
	st.mu.Unlock()
	if !f.Hang && f.Status == 0 {
		return false
	}
	target := r.Header.Get("X-Amz-Target")
	op := target[strings.LastIndex(target, ".")+1:]
	if len(f.Operations) > 0 && !slices.Contains(f.Operations, op) {
		return false
	}
	if f.Hang {
		ri.fault = "hang"
		select {
		case <-r.Context().Done():
			return true
		case <-release:
			return false
		}
	}
	ri.fault = strconv.Itoa(f.Status)
	switch f.Status {
	case http.StatusTooManyRequests:
		writeAPIError(w, &apiError{f.Status, "ThrottlingException", "Rate exceeded"})
	case http.StatusServiceUnavailable:
		writeAPIError(w, &apiError{f.Status, "ServiceUnavailableException", "Service Unavailable"})
	default:
		writeAPIError(w, &apiError{f.Status, "InternalServerException", "injected fault: internal server error"})
	}
	return true
}
