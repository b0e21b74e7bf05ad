package ecrfake

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// secretsTargetPrefix is the X-Amz-Target prefix of Secrets Manager (AWS
// JSON 1.1, SigV4 service "secretsmanager").
const secretsTargetPrefix = "secretsmanager."

// CallerARN is the identity the fake's credentials belong to: what STS
// GetCallerIdentity answers and what access-denied messages name.
func (s *Server) CallerARN() string { return s.callerARN() }

// secretSuffix is the "-" and six characters Secrets Manager appends to a
// secret's name in its ARN.
var secretSuffix = regexp.MustCompile(`-[A-Za-z0-9]{6}$`)

// secretName returns the secret name an ARN (or a name) stands for. The
// six-character suffix is dropped when present, so a name that itself ends
// in "-" and six letters or digits is ambiguous, as on Secrets Manager.
func secretName(id string) string {
	if _, rest, ok := strings.Cut(id, ":secret:"); ok && strings.HasPrefix(id, "arn:") {
		return secretSuffix.ReplaceAllString(rest, "")
	}
	return id
}

// secretARN is the ARN of the secret name in the fake's account.
func (s *Server) secretARN(name string) string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", s.opts.Region, s.opts.AccountID, name)
}

// PutSecret creates the Secrets Manager secret name (such as
// "ecr-pullthroughcache/docker-hub") and returns its ARN. The fake keeps
// no secret value: only DescribeSecret is served.
func (s *Server) PutSecret(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = true
	return s.secretARN(name)
}

// DeleteSecret removes the secret name (or the secret an ARN names), so
// that DescribeSecret answers ResourceNotFoundException.
func (s *Server) DeleteSecret(nameOrARN string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.secrets, secretName(nameOrARN))
}

// Secrets returns the names of the secrets that exist, sorted.
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.secrets {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// apiDescribeSecret answers Secrets Manager's DescribeSecret for a name, a
// full ARN or a partial ARN (without the suffix).
func (s *Server) apiDescribeSecret(body []byte) (any, *apiError) {
	var in struct {
		SecretID string `json:"SecretId"`
	}
	if e := decodeInput(body, &in); e != nil {
		return nil, e
	}
	if in.SecretID == "" {
		return nil, &apiError{http.StatusBadRequest, "InvalidParameterException", "You must provide a SecretId."}
	}
	if strings.HasPrefix(in.SecretID, "arn:") && !strings.Contains(in.SecretID, fmt.Sprintf(":%s:%s:secret:", s.opts.Region, s.opts.AccountID)) {
		return nil, &apiError{http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."}
	}
	name := secretName(in.SecretID)
	s.mu.Lock()
	ok := s.secrets[name]
	s.mu.Unlock()
	if !ok {
		return nil, &apiError{http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."}
	}
	return map[string]any{"ARN": s.secretARN(name), "Name": name, "CreatedDate": epoch(s.now())}, nil
}

// isQueryRequest reports whether r is an AWS query-protocol request (STS).
func isQueryRequest(r *http.Request) bool {
	return r.Header.Get("X-Amz-Target") == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

// serveSTS answers STS GetCallerIdentity (query protocol, XML) with the
// fake's caller; other actions are refused as unknown.
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, body []byte) {
	ri := info(r)
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")
	ri.operation = "sts:" + action
	if aerr := s.verifySigV4(r, body, "sts", s.opts.Region); aerr != nil {
		ri.auth = "sigv4-invalid"
		writeQueryError(w, aerr)
		return
	}
	ri.auth = "sigv4"
	s.mu.Lock()
	denied := s.denyOps[action]
	s.mu.Unlock()
	if action != "GetCallerIdentity" {
		writeQueryError(w, &apiError{http.StatusBadRequest, "InvalidAction", "Could not find operation " + action + " for version " + form.Get("Version")})
		return
	}
	if denied {
		writeQueryError(w, &apiError{http.StatusForbidden, "AccessDenied", fmt.Sprintf("User: %s is not authorized to perform: sts:GetCallerIdentity", s.callerARN())})
		return
	}
	type result struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	}
	out := struct {
		XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
		Result  result   `xml:"GetCallerIdentityResult"`
		Meta    struct {
			RequestID string `xml:"RequestId"`
		} `xml:"ResponseMetadata"`
	}{Result: result{Arn: s.callerARN(), UserID: "AIDAECRFAKEEXAMPLE", Account: s.opts.AccountID}}
	out.Meta.RequestID = requestID()
	b, _ := xml.Marshal(out)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", out.Meta.RequestID)
	_, _ = w.Write(b)
}

// writeQueryError answers like an AWS query-protocol service.
func writeQueryError(w http.ResponseWriter, e *apiError) {
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	out := struct {
		XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
		Error   struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
		RequestID string `xml:"RequestId"`
	}{RequestID: requestID()}
	out.Error.Type, out.Error.Code, out.Error.Message = typ, e.typ, e.msg
	b, _ := xml.Marshal(out)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// policyGrants reports whether the registry policy lets the fake's caller
// perform every one of actions on resource. It evaluates what `ecr-ptc
// rules grant` and people write for pull-through caches: Allow statements
// naming the caller, its account (root or id) or "*", with IAM's * and ?
// wildcards in actions (case-insensitive) and resources. Statements with a
// Condition, NotAction, NotResource or NotPrincipal never match; Deny
// statements are not evaluated.
func (s *Server) policyGrants(policy, resource string, actions ...string) bool {
	var doc struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if json.Unmarshal([]byte(policy), &doc) != nil || len(doc.Statement) == 0 {
		return false
	}
	var stmts []map[string]json.RawMessage
	if json.Unmarshal(doc.Statement, &stmts) != nil {
		var one map[string]json.RawMessage
		if json.Unmarshal(doc.Statement, &one) != nil {
			return false
		}
		stmts = []map[string]json.RawMessage{one}
	}
	caller := s.callerARN()
	granted := map[string]bool{}
	for _, st := range stmts {
		var effect string
		_ = json.Unmarshal(st["Effect"], &effect)
		if effect != "Allow" || st["Condition"] != nil || st["NotAction"] != nil || st["NotResource"] != nil || st["NotPrincipal"] != nil {
			continue
		}
		if !principalMatches(st["Principal"], caller, s.opts.AccountID) {
			continue
		}
		if !slices.ContainsFunc(stringOrList(st["Resource"]), func(p string) bool { return globMatch(p, resource) }) {
			continue
		}
		for _, a := range actions {
			if slices.ContainsFunc(stringOrList(st["Action"]), func(p string) bool { return globMatch(strings.ToLower(p), strings.ToLower(a)) }) {
				granted[a] = true
			}
		}
	}
	for _, a := range actions {
		if !granted[a] {
			return false
		}
	}
	return true
}

func principalMatches(raw json.RawMessage, caller, account string) bool {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		return star == "*"
	}
	var p struct {
		AWS json.RawMessage `json:"AWS"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return false
	}
	return slices.ContainsFunc(stringOrList(p.AWS), func(v string) bool {
		return v == "*" || v == caller || v == account || v == "arn:aws:iam::"+account+":root"
	})
}

func stringOrList(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}
	}
	var l []string
	_ = json.Unmarshal(raw, &l)
	return l
}

// globMatch matches s against a pattern with * and ?.
func globMatch(pattern, s string) bool {
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
