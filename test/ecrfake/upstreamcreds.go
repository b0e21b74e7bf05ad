package ecrfake

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// upstreamAuth classifies the Authorization header an upstream registry
// received, for LogEntry.Auth: "none", "ecr-token" (Basic AWS:<a token this
// fake issued>, which must never leave for an upstream), "basic", "bearer"
// or "other".
func (s *Server) upstreamAuth(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "none"
	}
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return "bearer"
	case !strings.EqualFold(scheme, "Basic"):
		return "other"
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "basic"
	}
	_, password, _ := strings.Cut(string(raw), ":")
	s.mu.Lock()
	_, issued := s.tokens[password]
	s.mu.Unlock()
	if issued {
		return "ecr-token"
	}
	return "basic"
}
