package ecrfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Targets of the two JSON 1.1 services the API listener serves.
const (
	ecrTargetPrefix       = "AmazonEC2ContainerRegistry_V20150921."
	ecrPublicTargetPrefix = "SpencerFrontendService."
)

// apiError is an AWS JSON 1.1 error: HTTP status, __type and message.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func errInvalidParameter(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterException", fmt.Sprintf(format, args...)}
}

// serveAPI answers AWS JSON 1.1 requests for ECR and ECR Public.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	ri := info(r)
	if r.Method != http.MethodPost {
		writeAPIError(w, &apiError{http.StatusNotFound, "UnknownOperationException", ""})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeAPIError(w, &apiError{http.StatusBadRequest, "SerializationException", "could not read request body"})
		return
	}
	if isQueryRequest(r) && isEC2Request(body) {
		s.serveEC2(w, r, body)
		return
	}
	if isQueryRequest(r) {
		s.serveSTS(w, r, body)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	var service, region, op string
	switch {
	case strings.HasPrefix(target, secretsTargetPrefix):
		service, region, op = "secretsmanager", s.opts.Region, strings.TrimPrefix(target, secretsTargetPrefix)
		ri.operation = "secretsmanager:" + op
	case strings.HasPrefix(target, ecrTargetPrefix):
		service, region, op = "ecr", s.opts.Region, strings.TrimPrefix(target, ecrTargetPrefix)
	case strings.HasPrefix(target, ecrPublicTargetPrefix):
		service, region, op = "ecr-public", "us-east-1", strings.TrimPrefix(target, ecrPublicTargetPrefix)
		ri.operation = "ecr-public:" + op
	default:
		writeAPIError(w, &apiError{http.StatusBadRequest, "UnknownOperationException", ""})
		return
	}
	if ri.operation == "" {
		ri.operation = op
	}
	if aerr := s.verifySigV4(r, body, service, region); aerr != nil {
		ri.auth = "sigv4-invalid"
		writeAPIError(w, aerr)
		return
	}
	ri.auth = "sigv4"
	s.mu.Lock()
	denied := s.denyOps[op]
	s.mu.Unlock()
	if denied {
		action := service + ":" + op
		resource := fmt.Sprintf("arn:aws:ecr:%s:%s:repository/*", s.opts.Region, s.opts.AccountID)
		switch service {
		case "ecr-public":
			resource = "*"
		case "secretsmanager":
			resource = fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:*", s.opts.Region, s.opts.AccountID)
		}
		writeAPIError(w, &apiError{http.StatusBadRequest, "AccessDeniedException", fmt.Sprintf(
			"User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action",
			s.callerARN(), action, resource, action)})
		return
	}
	var out any
	var aerr *apiError
	switch service {
	case "secretsmanager":
		switch op {
		case "DescribeSecret":
			out, aerr = s.apiDescribeSecret(body)
		default:
			aerr = &apiError{http.StatusBadRequest, "UnknownOperationException", ""}
		}
	case "ecr-public":
		switch op {
		case "GetAuthorizationToken":
			out, aerr = s.apiPublicGetAuthorizationToken()
		default:
			aerr = &apiError{http.StatusBadRequest, "UnknownOperationException", ""}
		}
	default:
		switch op {
		case "GetAuthorizationToken":
			out, aerr = s.apiGetAuthorizationToken(body)
		case "DescribePullThroughCacheRules":
			out, aerr = s.apiDescribePullThroughCacheRules(body)
		case "CreatePullThroughCacheRule":
			out, aerr = s.apiCreatePullThroughCacheRule(body)
		case "DeletePullThroughCacheRule":
			out, aerr = s.apiDeletePullThroughCacheRule(body)
		case "DescribeRepositories":
			out, aerr = s.apiDescribeRepositories(body)
		case "GetRegistryPolicy":
			out, aerr = s.apiGetRegistryPolicy()
		case "PutRegistryPolicy":
			out, aerr = s.apiPutRegistryPolicy(body)
		case "DescribeImages":
			out, aerr = s.apiDescribeImages(body)
		case "BatchGetImage":
			out, aerr = s.apiBatchGetImage(body)
		case "BatchCheckLayerAvailability":
			out, aerr = s.apiBatchCheckLayerAvailability(body)
		default:
			aerr = &apiError{http.StatusBadRequest, "UnknownOperationException", ""}
		}
	}
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	writeAPIJSON(w, out)
}

func (s *Server) callerARN() string {
	return fmt.Sprintf("arn:aws:iam::%s:user/ecrfake", s.opts.AccountID)
}

func writeAPIJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeAPIError(w, &apiError{http.StatusInternalServerError, "ServerException", "encode response: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// writeAPIError answers like an AWS JSON 1.1 service: X-Amzn-ErrorType and a
// body {"__type": ..., "message": ...}.
func writeAPIError(w http.ResponseWriter, e *apiError) {
	b, _ := json.Marshal(map[string]string{"__type": e.typ, "message": e.msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.Header().Set("X-Amzn-ErrorType", e.typ+":")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

func requestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Messages of the errors AWS JSON services answer for authentication
// problems (seen in AWS SDK tests and CLI output).
const (
	msgMissingAuth       = "Missing Authentication Token"
	msgUnrecognizedKey   = "The security token included in the request is invalid."
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// maxSkew is how far X-Amz-Date may be from the fake's clock.
const maxSkew = 5 * time.Minute

// verifySigV4 checks the request's SigV4 signature against the configured
// key, for service and region, and answers the way AWS does when it fails.
func (s *Server) verifySigV4(r *http.Request, body []byte, service, region string) *apiError {
	h := r.Header.Get("Authorization")
	if h == "" {
		return &apiError{http.StatusForbidden, "MissingAuthenticationTokenException", msgMissingAuth}
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return &apiError{http.StatusBadRequest, "IncompleteSignatureException", err.Error()}
	}
	if a.Credential.AccessKeyID != s.opts.AccessKeyID || r.Header.Get("X-Amz-Security-Token") != "" {
		return &apiError{http.StatusBadRequest, "UnrecognizedClientException", msgUnrecognizedKey}
	}
	if a.Credential.Service != service {
		return &apiError{http.StatusBadRequest, "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", service)}
	}
	if a.Credential.Region != region {
		return &apiError{http.StatusBadRequest, "InvalidSignatureException", "Credential should be scoped to a valid region. "}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return &apiError{http.StatusBadRequest, "IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."}
	}
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return &apiError{http.StatusBadRequest, "IncompleteSignatureException", fmt.Sprintf("X-Amz-Date %q must be in the ISO8601 basic format yyyyMMdd'T'HHmmss'Z'", amzDate)}
	}
	if !strings.HasPrefix(amzDate, a.Credential.Date) {
		return &apiError{http.StatusBadRequest, "InvalidSignatureException", fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", a.Credential.Date, amzDate[:8], amzDate)}
	}
	now := s.now().UTC()
	if t.Before(now.Add(-maxSkew)) {
		return &apiError{http.StatusBadRequest, "InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)", amzDate, now.Add(-maxSkew).Format(amzDateFormat), now.Format(amzDateFormat))}
	}
	if t.After(now.Add(maxSkew)) {
		return &apiError{http.StatusBadRequest, "InvalidSignatureException", fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)", amzDate, now.Add(maxSkew).Format(amzDateFormat), now.Format(amzDateFormat))}
	}
	if !slices.Contains(a.SignedHeaders, "host") {
		return &apiError{http.StatusBadRequest, "InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization."}
	}
	if !slices.Contains(a.SignedHeaders, "x-amz-date") {
		return &apiError{http.StatusBadRequest, "InvalidSignatureException", "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."}
	}
	if !slices.IsSorted(a.SignedHeaders) {
		return &apiError{http.StatusBadRequest, "InvalidSignatureException", msgSignatureMismatch}
	}
	headers := make([]header, 0, len(a.SignedHeaders))
	for _, name := range a.SignedHeaders {
		switch name {
		case "host":
			headers = append(headers, header{name, []string{r.Host}})
		case "content-length":
			headers = append(headers, header{name, []string{strconv.FormatInt(r.ContentLength, 10)}})
		default:
			headers = append(headers, header{name, r.Header.Values(name)})
		}
	}
	payload := sha256Hex(body)
	if ph := r.Header.Get("X-Amz-Content-Sha256"); ph != "" && ph != payload {
		return &apiError{http.StatusBadRequest, "InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match what was computed."}
	}
	canon := canonicalRequest(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, headers, payload, "")
	want := sign(s.opts.SecretAccessKey, a.Credential, stringToSign(amzDate, a.Credential, canon))
	if want != a.Signature {
		return &apiError{http.StatusBadRequest, "InvalidSignatureException", msgSignatureMismatch}
	}
	return nil
}

// epoch renders t as ECR does: seconds since the epoch, a JSON number.
func epoch(t time.Time) json.Number {
	return json.Number(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64))
}

// newToken issues a registry password valid for TokenTTL.
func (s *Server) newToken() (password string, expires time.Time) {
	password, expires = randomPassword(), s.now().Add(s.opts.TokenTTL)
	s.mu.Lock()
	s.tokens[password] = expires
	s.mu.Unlock()
	return password, expires
}

func randomPassword() string {
	b := make([]byte, 48)
	rand.Read(b)
	return "ecrfake." + base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) checkRegistryID(id string) *apiError {
	if id != "" && id != s.opts.AccountID {
		return errInvalidParameter("Invalid parameter at 'registryId' failed to satisfy constraint: 'registry %s is not in this account (%s)'", id, s.opts.AccountID)
	}
	return nil
}

func decodeInput(body []byte, v any) *apiError {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", "could not parse the request body as JSON: " + err.Error()}
	}
	return nil
}

func (s *Server) apiGetAuthorizationToken(body []byte) (any, *apiError) {
	var in struct {
		RegistryIDs []string `json:"registryIds"`
	}
	if e := decodeInput(body, &in); e != nil {
		return nil, e
	}
	password, expires := s.newToken()
	type authData struct {
		AuthorizationToken string      `json:"authorizationToken"`
		ExpiresAt          json.Number `json:"expiresAt"`
		ProxyEndpoint      string      `json:"proxyEndpoint"`
	}
	d := authData{
		AuthorizationToken: base64.StdEncoding.EncodeToString([]byte("AWS:" + password)),
		ExpiresAt:          epoch(expires),
		ProxyEndpoint:      s.ProxyEndpoint(),
	}
	return map[string]any{"authorizationData": []authData{d}}, nil
}

// apiPublicGetAuthorizationToken answers ECR Public's GetAuthorizationToken.
// Its token is for public.ecr.aws, so the private registry does not accept it.
func (s *Server) apiPublicGetAuthorizationToken() (any, *apiError) {
	password, expires := randomPassword(), s.now().Add(s.opts.TokenTTL)
	return map[string]any{"authorizationData": map[string]any{
		"authorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:" + password)),
		"expiresAt":          epoch(expires),
	}}, nil
}

func (s *Server) ruleJSON(r Rule) map[string]any {
	m := map[string]any{
		"ecrRepositoryPrefix": r.ECRRepositoryPrefix,
		"upstreamRegistryUrl": r.UpstreamRegistryURL,
		"upstreamRegistry":    r.UpstreamRegistry,
		"registryId":          s.opts.AccountID,
		"createdAt":           epoch(r.CreatedAt),
		"updatedAt":           epoch(r.UpdatedAt),
	}
	if r.CredentialArn != "" {
		m["credentialArn"] = r.CredentialArn
	}
	if r.CustomRoleArn != "" {
		m["customRoleArn"] = r.CustomRoleArn
	}
	if p := r.UpstreamRepositoryPrefix; p != "" {
		m["upstreamRepositoryPrefix"] = p
	} else {
		m["upstreamRepositoryPrefix"] = "ROOT"
	}
	return m
}

// page applies maxResults/nextToken pagination to n items.
func page(n int, maxResults *int, nextToken string, field string) (from, to int, next string, e *apiError) {
	limit := 100
	if maxResults != nil {
		if *maxResults < 1 || *maxResults > 1000 {
			return 0, 0, "", errInvalidParameter("Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value between 1 and 1000'")
		}
		limit = *maxResults
	}
	if nextToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(nextToken)
		if err != nil || !strings.HasPrefix(string(raw), field+":") {
			return 0, 0, "", errInvalidParameter("Invalid parameter at 'nextToken' failed to satisfy constraint: 'the token is not one this operation returned'")
		}
		from, err = strconv.Atoi(strings.TrimPrefix(string(raw), field+":"))
		if err != nil || from < 0 {
			return 0, 0, "", errInvalidParameter("Invalid parameter at 'nextToken' failed to satisfy constraint: 'the token is not one this operation returned'")
		}
	}
	from = min(from, n)
	to = min(from+limit, n)
	if to < n {
		next = base64.RawURLEncoding.EncodeToString([]byte(field + ":" + strconv.Itoa(to)))
	}
	return from, to, next, nil
}

func (s *Server) apiDescribePullThroughCacheRules(body []byte) (any, *apiError) {
	var in struct {
		RegistryID            string   `json:"registryId"`
		ECRRepositoryPrefixes []string `json:"ecrRepositoryPrefixes"`
		NextToken             string   `json:"nextToken"`
		MaxResults            *int     `json:"maxResults"`
	}
	if e := decodeInput(body, &in); e != nil {
		return nil, e
	}
	if e := s.checkRegistryID(in.RegistryID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	rules := append([]Rule(nil), s.rules...)
	s.mu.Unlock()
	if len(in.ECRRepositoryPrefixes) > 0 {
		var sel []Rule
		for _, p := range in.ECRRepositoryPrefixes {
			i := slices.IndexFunc(rules, func(r Rule) bool { return r.ECRRepositoryPrefix == p })
			if i < 0 {
				return nil, s.ruleNotFound(p)
			}
			sel = append(sel, rules[i])
		}
		rules = sel
	}
	from, to, next, e := page(len(rules), in.MaxResults, in.NextToken, "rules")
	if e != nil {
		return nil, e
	}
	out := map[string]any{}
	list := []map[string]any{}
	for _, r := range rules[from:to] {
		list = append(list, s.ruleJSON(r))
	}
	out["pullThroughCacheRules"] = list
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func (s *Server) ruleNotFound(prefix string) *apiError {
	return &apiError{http.StatusBadRequest, "PullThroughCacheRuleNotFoundException",
		fmt.Sprintf("The pull through cache rule with prefix '%s' does not exist in the registry with id '%s'", prefix, s.opts.AccountID)}
}

// prefixPattern is the pattern of ecrRepositoryPrefix in the ECR API model.
var prefixPattern = regexp.MustCompile(`^((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)$`)

// credentialArnPattern is the pattern of credentialArn in the ECR API model.
var credentialArnPattern = regexp.MustCompile(`^arn:aws:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr-pullthroughcache/[a-zA-Z0-9/_+=.@-]+$`)

func (s *Server) apiCreatePullThroughCacheRule(body []byte) (any, *apiError) {
	var in struct {
		ECRRepositoryPrefix      string `json:"ecrRepositoryPrefix"`
		UpstreamRegistryURL      string `json:"upstreamRegistryUrl"`
		RegistryID               string `json:"registryId"`
		UpstreamRegistry         string `json:"upstreamRegistry"`
		CredentialArn            string `json:"credentialArn"`
		CustomRoleArn            string `json:"customRoleArn"`
		UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix"`
	}
	if e := decodeInput(body, &in); e != nil {
		return nil, e
	}
	if e := s.checkRegistryID(in.RegistryID); e != nil {
		return nil, e
	}
	p := in.ECRRepositoryPrefix
	if len(p) < 2 || len(p) > 30 || !prefixPattern.MatchString(p) {
		return nil, errInvalidParameter("Invalid parameter at 'ecrRepositoryPrefix' failed to satisfy constraint: 'Member must have length between 2 and 30 and match pattern ((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)'")
	}
	if in.UpstreamRegistryURL == "" {
		return nil, errInvalidParameter("Invalid parameter at 'upstreamRegistryUrl' failed to satisfy constraint: 'Member must not be null'")
	}
	reg := in.UpstreamRegistry
	if reg == "" {
		reg = upstreamRegistryFor(in.UpstreamRegistryURL)
	}
	if credentialed(reg) && in.CredentialArn == "" {
		return nil, &apiError{http.StatusBadRequest, "UnableToAccessSecretException",
			fmt.Sprintf("The upstream registry %s requires authentication: specify a credentialArn of a Secrets Manager secret whose name starts with ecr-pullthroughcache/", reg)}
	}
	if in.CredentialArn != "" && !credentialArnPattern.MatchString(in.CredentialArn) {
		return nil, errInvalidParameter("Invalid parameter at 'credentialArn' failed to satisfy constraint: 'Member must satisfy regular expression pattern: ^arn:aws:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\\-pullthroughcache\\/[a-zA-Z0-9\\/_+=.@-]+$'")
	}
	p = strings.TrimSuffix(p, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.ContainsFunc(s.rules, func(r Rule) bool { return r.ECRRepositoryPrefix == p }) {
		return nil, &apiError{http.StatusBadRequest, "PullThroughCacheRuleAlreadyExistsException",
			fmt.Sprintf("A pull through cache rule with prefix '%s' already exists in the registry with id '%s'", p, s.opts.AccountID)}
	}
	now := s.now()
	r := Rule{
		ECRRepositoryPrefix: p, UpstreamRegistryURL: in.UpstreamRegistryURL, UpstreamRegistry: reg,
		CredentialArn: in.CredentialArn, CustomRoleArn: in.CustomRoleArn,
		UpstreamRepositoryPrefix: in.UpstreamRepositoryPrefix, CreatedAt: now, UpdatedAt: now,
	}
	s.rules = append(s.rules, r)
	return s.ruleJSON(r), nil
}

func (s *Server) apiDeletePullThroughCacheRule(body []byte) (any, *apiError) {
	var in struct {
		ECRRepositoryPrefix string `json:"ecrRepositoryPrefix"`
		RegistryID          string `json:"registryId"`
	}
	if e := decodeInput(body, &in); e != nil {
		return nil, e
	}
	if e := s.checkRegistryID(in.RegistryID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.rules, func(r Rule) bool { return r.ECRRepositoryPrefix == in.ECRRepositoryPrefix })
	if i < 0 {
		return nil, s.ruleNotFound(in.ECRRepositoryPrefix)
	}
	r := s.rules[i]
	s.rules = slices.Delete(s.rules, i, i+1)
	return s.ruleJSON(r), nil
}

func (s *Server) apiDescribeRepositories(body []byte) (any, *apiError) {
	var in struct {
		RegistryID      string   `json:"registryId"`
		RepositoryNames []string `json:"repositoryNames"`
		NextToken       string   `json:"nextToken"`
		MaxResults      *int     `json:"maxResults"`
	}
	if e := decodeInput(body, &in); e != nil {
		return nil, e
	}
	if e := s.checkRegistryID(in.RegistryID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	names := make([]string, 0, len(s.repos))
	created := map[string]time.Time{}
	for n, r := range s.repos {
		names = append(names, n)
		created[n] = r.created
	}
	s.mu.Unlock()
	slices.Sort(names)
	if len(in.RepositoryNames) > 0 {
		for _, n := range in.RepositoryNames {
			if _, ok := created[n]; !ok {
				return nil, &apiError{http.StatusBadRequest, "RepositoryNotFoundException",
					fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '%s'", n, s.opts.AccountID)}
			}
		}
		names = in.RepositoryNames
	}
	from, to, next, e := page(len(names), in.MaxResults, in.NextToken, "repositories")
	if e != nil {
		return nil, e
	}
	list := []map[string]any{}
	for _, n := range names[from:to] {
		list = append(list, map[string]any{
			"repositoryArn":              fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", s.opts.Region, s.opts.AccountID, n),
			"registryId":                 s.opts.AccountID,
			"repositoryName":             n,
			"repositoryUri":              s.RegistryHost() + "/" + n,
			"createdAt":                  epoch(created[n]),
			"imageTagMutability":         "MUTABLE",
			"imageScanningConfiguration": map[string]bool{"scanOnPush": false},
			"encryptionConfiguration":    map[string]string{"encryptionType": "AES256"},
		})
	}
	out := map[string]any{"repositories": list}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

func (s *Server) apiGetRegistryPolicy() (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.policy == "" {
		return nil, &apiError{http.StatusBadRequest, "RegistryPolicyNotFoundException",
			fmt.Sprintf("Registry policy does not exist in the registry with id '%s'", s.opts.AccountID)}
	}
	return map[string]string{"registryId": s.opts.AccountID, "policyText": s.policy}, nil
}

func (s *Server) apiPutRegistryPolicy(body []byte) (any, *apiError) {
	var in struct {
		PolicyText string `json:"policyText"`
	}
	if e := decodeInput(body, &in); e != nil {
		return nil, e
	}
	if in.PolicyText == "" || !json.Valid([]byte(in.PolicyText)) {
		return nil, errInvalidParameter("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'")
	}
	s.mu.Lock()
	s.policy = in.PolicyText
	s.mu.Unlock()
	return map[string]string{"registryId": s.opts.AccountID, "policyText": in.PolicyText}, nil
}

// RegistryPolicy returns the policy text last stored by PutRegistryPolicy.
func (s *Server) RegistryPolicy() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policy
}
