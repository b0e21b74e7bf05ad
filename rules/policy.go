package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// GrantSid is the Sid of the registry policy statement `ecr-ptc rules
// grant` writes.
const GrantSid = "EcrPtcPullThroughCache"

// GrantActions are the actions a principal needs, besides the usual pull
// actions granted by IAM (such as AmazonEC2ContainerRegistryReadOnly), for
// a pull to import an image through the cache the first time. They are the
// two a registry policy can grant for pull-through cache
// (AmazonECR/latest/userguide/pull-through-cache-iam.html): the pull actions
// themselves are not registry-policy actions.
var GrantActions = []string{"ecr:BatchImportUpstreamImage", "ecr:CreateRepository"}

// ErrInvalidPolicy means a registry policy is not a JSON policy document.
var ErrInvalidPolicy = errors.New("invalid registry policy")

// Grant is what MergeGrant adds to a registry policy: the actions of
// GrantActions for Principal on the repositories under each prefix.
type Grant struct {
	// Principal is an IAM role or user ARN, such as
	// arn:aws:iam::123456789012:role/node. See PrincipalARN.
	Principal string
	// Resources are repository ARNs, usually from RepositoryARN.
	Resources []string
}

// RepositoryARN returns the ARN matching every repository under an ECR
// prefix: arn:aws:ecr:<region>:<account>:repository/<prefix>/*. The console
// refuses the wildcard, the API accepts it.
func RepositoryARN(region, account, prefix string) string {
	return fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s/*", region, account, strings.Trim(prefix, "/"))
}

// PrincipalARN turns the caller ARN GetCallerIdentity returns into one a
// policy can name: an assumed role (arn:aws:sts::A:assumed-role/R/session)
// becomes the role (arn:aws:iam::A:role/R); other ARNs are returned as they
// are. A role created with a path (/team/R) must be named with that path by
// hand: the assumed-role ARN does not carry it.
func PrincipalARN(callerARN string) string {
	parts := strings.SplitN(callerARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sts" {
		return callerARN
	}
	res, ok := strings.CutPrefix(parts[5], "assumed-role/")
	if !ok {
		return callerARN
	}
	role, _, _ := strings.Cut(res, "/")
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", parts[1], parts[4], role)
}

// MergeGrant returns the registry policy text with g granted. existing is
// the current policy text, "" for none. When an Allow statement of existing
// already grants every action of GrantActions to g.Principal on every
// resource of g, existing is returned unchanged, byte for byte, with
// changed false. Otherwise the statement with Sid GrantSid gains the
// principal and resources (or is appended, when there is none) and the
// policy is rendered anew: every other statement is kept, in its order,
// with its keys in their order; the output is indented with two spaces and
// the same input always gives the same bytes. MergeGrant does no I/O.
func MergeGrant(existing string, g Grant) (policy string, changed bool, err error) {
	if g.Principal == "" || len(g.Resources) == 0 {
		return "", false, errors.New("a grant needs a principal ARN and at least one repository ARN")
	}
	doc, err := parsePolicy(existing)
	if err != nil {
		return "", false, err
	}
	for _, raw := range doc.statements {
		if st, err := parseStatement(raw); err == nil && st.covers(g) {
			return existing, false, nil
		}
	}
	ours := -1
	for i, raw := range doc.statements {
		if st, err := parseStatement(raw); err == nil && st.Sid == GrantSid {
			ours = i
			break
		}
	}
	principals := []string{g.Principal}
	resources := slices.Clone(g.Resources)
	if ours >= 0 {
		st, _ := parseStatement(doc.statements[ours]) // parsed above
		if st.Effect == "Allow" {
			principals = union(st.Principal.AWS, principals)
			resources = union(st.Resource, resources)
		}
	}
	slices.Sort(principals)
	slices.Sort(resources)
	raw, err := renderGrant(principals, resources)
	if err != nil {
		return "", false, err
	}
	if ours >= 0 {
		doc.statements[ours] = raw
	} else {
		doc.statements = append(doc.statements, raw)
	}
	out, err := doc.render()
	if err != nil {
		return "", false, err
	}
	return out, true, nil
}

// PolicyAllows reports whether the Allow statements of the registry policy
// text grant action on resource to principal. A statement matches the
// principal when it names it, the account root ("arn:aws:iam::A:root" or
// "A") or "*"; actions and resources match with IAM's * and ? wildcards,
// case-insensitively for actions. Conditions and Deny statements are not
// evaluated (a statement with a Condition never matches). Unparseable
// policies allow nothing.
func PolicyAllows(policy, principal, action, resource string) bool {
	doc, err := parsePolicy(policy)
	if err != nil {
		return false
	}
	account := accountOf(principal)
	for _, raw := range doc.statements {
		st, err := parseStatement(raw)
		if err != nil || st.Effect != "Allow" || len(st.Condition) > 0 {
			continue
		}
		okP := st.Principal.Any || slices.ContainsFunc(st.Principal.AWS, func(p string) bool {
			return p == "*" || p == principal || (account != "" && (p == account || p == "arn:aws:iam::"+account+":root"))
		})
		okA := slices.ContainsFunc(st.Action, func(a string) bool { return wildcardMatch(strings.ToLower(a), strings.ToLower(action)) })
		okR := slices.ContainsFunc(st.Resource, func(r string) bool { return wildcardMatch(r, resource) })
		if okP && okA && okR {
			return true
		}
	}
	return false
}

// policyDoc is a policy document with its top-level keys in order and its
// statements as raw JSON.
type policyDoc struct {
	keys       []string
	values     map[string]json.RawMessage
	statements []json.RawMessage
}

func parsePolicy(text string) (*policyDoc, error) {
	doc := &policyDoc{values: map[string]json.RawMessage{}}
	if strings.TrimSpace(text) == "" {
		doc.keys = []string{"Version", "Statement"}
		doc.values["Version"] = json.RawMessage(`"2012-10-17"`)
		return doc, nil
	}
	dec := json.NewDecoder(strings.NewReader(text))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: the policy text is not a JSON object", ErrInvalidPolicy)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: value of %q: %w", ErrInvalidPolicy, key, err)
		}
		if _, dup := doc.values[key]; dup {
			return nil, fmt.Errorf("%w: key %q appears twice", ErrInvalidPolicy, key)
		}
		doc.keys = append(doc.keys, key)
		doc.values[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: text follows the policy object", ErrInvalidPolicy)
	}
	st, ok := doc.values["Statement"]
	if !ok {
		doc.keys = append(doc.keys, "Statement")
		return doc, nil
	}
	switch bytes.TrimSpace(st)[0] {
	case '[':
		if err := json.Unmarshal(st, &doc.statements); err != nil {
			return nil, fmt.Errorf("%w: Statement: %w", ErrInvalidPolicy, err)
		}
	case '{':
		doc.statements = []json.RawMessage{st}
	default:
		return nil, fmt.Errorf("%w: Statement is neither an object nor a list", ErrInvalidPolicy)
	}
	for i, s := range doc.statements {
		if t := bytes.TrimSpace(s); len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("%w: statement %d is not an object", ErrInvalidPolicy, i+1)
		}
	}
	return doc, nil
}

// render writes the document with two-space indentation, keys and
// statements in their order.
func (d *policyDoc) render() (string, error) {
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, k := range d.keys {
		kb, _ := json.Marshal(k)
		b.WriteString("  ")
		b.Write(kb)
		b.WriteString(": ")
		if k == "Statement" {
			b.WriteString("[")
			for j, s := range d.statements {
				if j > 0 {
					b.WriteString(",")
				}
				b.WriteString("\n    ")
				if err := json.Indent(&b, s, "    ", "  "); err != nil {
					return "", fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
				}
			}
			if len(d.statements) > 0 {
				b.WriteString("\n  ")
			}
			b.WriteString("]")
		} else if err := json.Indent(&b, d.values[k], "  ", "  "); err != nil {
			return "", fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
		}
		if i < len(d.keys)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// renderGrant renders ecr-ptc's statement with a fixed key order.
func renderGrant(principals, resources []string) (json.RawMessage, error) {
	type principal struct {
		AWS any `json:"AWS"`
	}
	one := func(s []string) any {
		if len(s) == 1 {
			return s[0]
		}
		return s
	}
	st := struct {
		Sid       string    `json:"Sid"`
		Effect    string    `json:"Effect"`
		Principal principal `json:"Principal"`
		Action    []string  `json:"Action"`
		Resource  any       `json:"Resource"`
	}{GrantSid, "Allow", principal{one(principals)}, GrantActions, one(resources)}
	return json.Marshal(st)
}

// statement is the part of a policy statement the merge looks at.
type statement struct {
	Sid       string
	Effect    string
	Principal principals
	Action    stringList
	Resource  stringList
	// Condition, and any of NotPrincipal, NotAction or NotResource, make
	// the statement one the merge does not rely on.
	Condition json.RawMessage
}

// parseStatement reads a statement with IAM's element names matched
// exactly (encoding/json would also accept "effect" or "ACTION", which
// IAM does not read as those elements).
func parseStatement(raw json.RawMessage) (statement, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return statement{}, err
	}
	var st statement
	if v, ok := m["Sid"]; ok {
		if err := json.Unmarshal(v, &st.Sid); err != nil {
			return statement{}, err
		}
	}
	if v, ok := m["Effect"]; ok {
		if err := json.Unmarshal(v, &st.Effect); err != nil {
			return statement{}, err
		}
	}
	if v, ok := m["Principal"]; ok {
		if err := st.Principal.parse(v); err != nil {
			return statement{}, err
		}
	}
	for key, dst := range map[string]*stringList{"Action": &st.Action, "Resource": &st.Resource} {
		if v, ok := m[key]; ok {
			if err := dst.parse(v); err != nil {
				return statement{}, err
			}
		}
	}
	st.Condition = m["Condition"]
	for _, k := range []string{"NotPrincipal", "NotAction", "NotResource"} {
		if _, ok := m[k]; ok && st.Condition == nil {
			st.Condition = json.RawMessage(`{}`)
		}
	}
	return st, nil
}

// covers reports whether st alone grants g.
func (st statement) covers(g Grant) bool {
	if st.Effect != "Allow" || len(st.Condition) > 0 {
		return false
	}
	if !st.Principal.Any && !slices.Contains(st.Principal.AWS, g.Principal) {
		return false
	}
	for _, a := range GrantActions {
		if !slices.ContainsFunc(st.Action, func(x string) bool { return wildcardMatch(strings.ToLower(x), strings.ToLower(a)) }) {
			return false
		}
	}
	for _, r := range g.Resources {
		if !slices.ContainsFunc(st.Resource, func(x string) bool { return wildcardMatch(x, r) }) {
			return false
		}
	}
	return true
}

// principals is a statement's Principal: "*" or {"AWS": one or many}.
type principals struct {
	Any bool
	AWS []string
}

func (p *principals) parse(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		p.Any = s == "*"
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if v, ok := m["AWS"]; ok {
		var l stringList
		if err := l.parse(v); err != nil {
			return err
		}
		p.AWS = l
	}
	return nil
}

// stringList is a policy value that is one string or a list of them.
type stringList []string

func (l *stringList) parse(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*l = []string{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*l = ss
	return nil
}

// wildcardMatch matches s against an IAM pattern with * and ?, in time
// linear in len(pattern)*len(s) at worst (greedy with one backtrack point).
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
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

// accountOf returns the account id of an ARN, or "".
func accountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return ""
	}
	return parts[4]
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
