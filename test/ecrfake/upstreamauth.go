package ecrfake

import (
	"net/http"
	"sync"
)

// upstreamAuthMsg is what ECR answers when it cannot log in to the
// upstream with the rule's secret (containers-roadmap#2354; the HTTP
// status is not shown there, 403 is the fake's choice for code DENIED).
const upstreamAuthMsg = "The authentication to the upstream registry failed. Verify that the credentials provided in the pull through cache rule are correct, and try again."

// authFailState holds the prefixes whose imports fail upstream
// authentication.
type authFailState struct {
	mu       sync.Mutex
	prefixes map[string]bool
}

// FailUpstreamAuth makes imports under the rule with ECR repository
// prefix fail as when the rule's Secrets Manager secret holds wrong
// credentials: a first pull answers 403 DENIED with ECR's "authentication
// to the upstream registry failed" message; cached images still pull.
func (s *Server) FailUpstreamAuth(prefix string, fail bool) {
	s.authFail.mu.Lock()
	defer s.authFail.mu.Unlock()
	if s.authFail.prefixes == nil {
		s.authFail.prefixes = map[string]bool{}
	}
	s.authFail.prefixes[prefix] = fail
}

// upstreamAuthError is the error of an import under rule while
// FailUpstreamAuth is set for its prefix, else nil.
func (s *Server) upstreamAuthError(rule *Rule) *regError {
	s.authFail.mu.Lock()
	defer s.authFail.mu.Unlock()
	if rule == nil || !s.authFail.prefixes[rule.ECRRepositoryPrefix] {
		return nil
	}
	return &regError{http.StatusForbidden, "DENIED", upstreamAuthMsg}
}
