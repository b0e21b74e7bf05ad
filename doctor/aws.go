package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
	"github.com/ecr-ptc/ecr-ptc/ecrhost"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/rules"
	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// IdentityAPI is the STS call the aws-identity check makes.
type IdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// ECRAPI is the part of the ECR API the checks call: GetAuthorizationToken
// and the rule discovery of package rules.
type ECRAPI interface {
	rules.API
}

// SecretsAPI is the Secrets Manager call the secrets check makes.
type SecretsAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
}

// Resolver looks up a host name's addresses.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

type netResolver struct{}

func (netResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	return net.DefaultResolver.LookupHost(ctx, host)
}

func (d *Doctor) checkIdentity(ctx context.Context, st *state) Result {
	if d.IdentityErr != nil {
		return Result{Status: Fail, Detail: d.IdentityErr.Error(), Fix: awsapi.CredentialsFix + ", and a region (AWS_REGION or region in the config file)"}
	}
	if d.Identity == nil {
		return Result{Status: Fail, Detail: "no STS client", Fix: awsapi.CredentialsFix}
	}
	out, err := d.Identity.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Result{Status: Fail, Detail: "sts:GetCallerIdentity: " + oneLine(err), Fix: awsapi.Fix(err, "sts:GetCallerIdentity")}
	}
	st.callerARN, st.account = aws.ToString(out.Arn), aws.ToString(out.Account)
	region := d.Region
	if region == "" {
		return Result{Status: Fail, Detail: st.callerARN + ": no AWS region", Fix: "set AWS_REGION, or region in the config file; on EC2 the instance metadata gives it"}
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("%s (account %s, region %s)", st.callerARN, st.account, region)}
}

func (d *Doctor) checkECRAPI(ctx context.Context, st *state) Result {
	if d.ECR == nil && d.IdentityErr != nil {
		return Result{Status: Skip, Detail: "needs the AWS configuration the aws-identity check could not load"}
	}
	if d.ECR == nil {
		return Result{Status: Fail, Detail: "no ECR client", Fix: awsapi.CredentialsFix}
	}
	out, err := d.ECR.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return Result{Status: Fail, Detail: "ecr:GetAuthorizationToken: " + oneLine(err), Fix: awsapi.Fix(err, "ecr:GetAuthorizationToken")}
	}
	var endpoint string
	for _, a := range out.AuthorizationData {
		if aws.ToString(a.AuthorizationToken) != "" {
			st.authToken = aws.ToString(a.AuthorizationToken)
			endpoint = aws.ToString(a.ProxyEndpoint)
			break
		}
	}
	if st.authToken == "" {
		return Result{Status: Fail, Detail: "GetAuthorizationToken returned no token", Fix: "check the ECR endpoint (AWS_ENDPOINT_URL_ECR) and try again"}
	}
	st.registry = strings.ToLower(d.Registry)
	if st.registry == "" {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" {
			return Result{Status: Fail, Detail: fmt.Sprintf("GetAuthorizationToken returned proxyEndpoint %q, which is not a URL", endpoint), Fix: "set registry in the config file or pass --registry"}
		}
		st.registry = strings.ToLower(u.Host)
	}
	if d.Region == "" {
		if r, err := ecrhost.Parse(st.registry); err == nil {
			d.Region = r.Region
		}
	}
	return Result{Status: Pass, Detail: "issued a registry token for " + st.registry}
}

// checkEndpoints resolves the names traffic to ECR goes to and warns about
// public addresses: that traffic leaves through the NAT gateway.
func (d *Doctor) checkEndpoints(ctx context.Context, st *state) Result {
	region := d.Region
	if region == "" {
		return Result{Status: Skip, Detail: "no region known (see aws-identity)"}
	}
	suffix := "amazonaws.com"
	host := st.registry
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.HasSuffix(host, ".amazonaws.com.cn") {
		suffix = "amazonaws.com.cn"
	}
	// ECR's S3 layer bucket is not among them: an S3 gateway endpoint
	// leaves its name resolving to public addresses, so only the route
	// table tells (the s3-gateway check).
	names := []struct{ name, endpoint string }{
		{"api.ecr." + region + "." + suffix, "interface endpoint com.amazonaws." + region + ".ecr.api"},
		{host, "interface endpoint com.amazonaws." + region + ".ecr.dkr"},
	}
	if host == "" {
		// The registry is unknown (see ecr-api): check the other two.
		names = slices.Delete(names, 1, 2)
	}
	var private, public, failed []string
	var fixes []string
	for _, n := range names {
		addrs, err := d.Resolver.LookupHost(ctx, n.name)
		if err != nil || len(addrs) == 0 {
			failed = append(failed, n.name)
			continue
		}
		if slices.ContainsFunc(addrs, func(a string) bool { return !isPrivate(a) }) {
			public = append(public, fmt.Sprintf("%s (%s)", n.name, strings.Join(addrs, ", ")))
			fixes = append(fixes, n.endpoint)
			continue
		}
		private = append(private, n.name)
	}
	switch {
	case len(public) > 0:
		return Result{Status: Warn, Detail: "public addresses: " + strings.Join(public, "; ") + ": that traffic crosses the NAT gateway",
			Fix: "create the " + strings.Join(fixes, ", the ") + " in this VPC (with private DNS for the interface endpoints)"}
	case len(failed) > 0:
		return Result{Status: Warn, Detail: "could not resolve " + strings.Join(failed, ", "),
			Fix: "check the VPC's DNS (enableDnsSupport/enableDnsHostnames) and /etc/resolv.conf"}
	}
	return Result{Status: Pass, Detail: "private addresses: " + strings.Join(private, ", ")}
}

// isPrivate reports whether addr is a VPC-internal address: RFC 1918,
// RFC 6598 (100.64.0.0/10), IPv6 ULA, or loopback.
func isPrivate(addr string) bool {
	ip := net.ParseIP(addr)
	if ip == nil {
		return false
	}
	if ip.IsPrivate() || ip.IsLoopback() {
		return true
	}
	_, cgnat, _ := net.ParseCIDR("100.64.0.0/10")
	return cgnat.Contains(ip)
}

func (d *Doctor) checkRegistry(ctx context.Context, st *state) Result {
	if r := st.needs("ecr-api"); r != nil {
		return *r
	}
	if st.authToken == "" {
		return Result{Status: Skip, Detail: "needs the registry token of the ecr-api check"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+st.registry+"/v2/", nil)
	if err != nil {
		return Result{Status: Fail, Detail: err.Error(), Fix: "check registry in the config file or --registry"}
	}
	req.Header.Set("Authorization", "Basic "+st.authToken)
	resp, err := d.HTTPClient.Do(req)
	if err != nil {
		return Result{Status: Fail, Detail: "GET https://" + st.registry + "/v2/: " + oneLine(err),
			Fix: "let this host reach " + st.registry + " on port 443: the security group of the ecr.dkr VPC endpoint, or a route to the internet"}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	switch resp.StatusCode {
	case http.StatusOK:
		return Result{Status: Pass, Detail: "https://" + st.registry + "/v2/ accepted the token"}
	case http.StatusUnauthorized, http.StatusForbidden:
		return Result{Status: Fail, Detail: fmt.Sprintf("https://%s/v2/ refused the token (%d)", st.registry, resp.StatusCode),
			Fix: "the token is for another registry: check registry in the config file or --registry against the account and region"}
	}
	return Result{Status: Warn, Detail: fmt.Sprintf("https://%s/v2/ answered %s", st.registry, resp.Status), Fix: "try again; if it persists, check the AWS Health Dashboard for ECR"}
}

func (d *Doctor) checkRules(ctx context.Context, st *state) Result {
	if r := st.needs("ecr-api"); r != nil {
		return *r
	}
	if d.ECR == nil || st.registry == "" {
		return Result{Status: Skip, Detail: "needs the registry host of the ecr-api check"}
	}
	rs, err := rules.Discover(ctx, d.ECR)
	if err != nil {
		return Result{Status: Fail, Detail: oneLine(err), Fix: awsapi.Fix(err, "ecr:DescribePullThroughCacheRules")}
	}
	st.rules, st.rulesOK = rs, true
	if m, err := rewrite.NewMapping(st.registry, rules.Merge(rs, d.ConfigRules)); err == nil {
		st.mapping = m
	}
	have := map[string]bool{}
	for _, r := range rs {
		have[upstream.HostForURL(r.UpstreamURL)] = true
	}
	need := d.upstreamsInUse(st)
	var missing []string
	for _, u := range need {
		if !have[u] {
			missing = append(missing, u)
		}
	}
	if len(missing) > 0 {
		var fixes []string
		for _, u := range missing {
			fix := "ecr-ptc rules create --upstream " + u
			if (rewrite.Rule{Upstream: u}).NeedsCredentials() {
				fix += " --credential-arn <ARN of secret " + rules.SecretNamePrefix + upstream.DefaultPrefix(u) + ">"
			}
			fixes = append(fixes, fix)
		}
		fixes[len(fixes)-1] += "; then ecr-ptc setup, so the engines route the new upstreams"
		return Result{Status: Fail, Detail: fmt.Sprintf("no pull-through cache rule for %s (in use: %s)", strings.Join(missing, ", "), strings.Join(need, ", ")),
			Fix: strings.Join(fixes, "; ")}
	}
	if len(rs) == 0 {
		return Result{Status: Warn, Detail: "the account has no pull-through cache rule", Fix: "ecr-ptc rules create --upstream public.ecr.aws (and the other upstreams you pull from)"}
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("%d rules; every upstream in use has one (%s)", len(rs), strings.Join(need, ", "))}
}

// upstreamsInUse returns the upstreams the engines are configured for,
// those of the config file's rules and the probe image's, sorted.
func (d *Doctor) upstreamsInUse(st *state) []string {
	set := map[string]bool{}
	for _, u := range configuredUpstreams(d.Root, d.CertsDir, d.Docker, d.MirrorURL) {
		set[u] = true
	}
	for _, r := range d.ConfigRules {
		set[upstream.Normalize(r.Upstream)] = true
	}
	if host, ok := refHost(d.ProbeImage); ok && !slices.Contains(d.Skip, "pull-through") {
		set[host] = true
	}
	out := slices.Sorted(maps.Keys(set))
	st.configured = out
	return out
}

func (d *Doctor) checkSecrets(ctx context.Context, st *state) Result {
	if r := st.needs("rules"); r != nil && !st.rulesOK {
		return *r
	}
	var checked, missing, denied []string
	var fixes []string
	for _, r := range st.rules {
		if !r.NeedsCredentials() || r.UpstreamRegistry == "ecr" {
			continue
		}
		up := upstream.HostForURL(r.UpstreamURL)
		if r.CredentialARN == "" {
			missing = append(missing, fmt.Sprintf("rule %s (%s) has no credentialArn", r.Prefix, up))
			fixes = append(fixes, fmt.Sprintf("recreate rule %s with --credential-arn", r.Prefix))
			continue
		}
		if d.Secrets == nil {
			denied = append(denied, r.CredentialARN)
			continue
		}
		_, err := d.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.CredentialARN)})
		var nf *smtypes.ResourceNotFoundException
		switch {
		case err == nil:
			checked = append(checked, r.Prefix)
		case errors.As(err, &nf):
			name := secretNameOf(r.CredentialARN)
			missing = append(missing, fmt.Sprintf("secret %s of rule %s (%s) does not exist", name, r.Prefix, up))
			fixes = append(fixes, fmt.Sprintf(`aws secretsmanager create-secret --name %s --secret-string '{"username":"<user>","accessToken":"<token>"}' (the rule's credentialArn must name it)`, name))
		case isAccessDenied(err):
			denied = append(denied, r.CredentialARN)
		default:
			denied = append(denied, r.CredentialARN+" ("+oneLine(err)+")")
		}
	}
	switch {
	case len(missing) > 0:
		return Result{Status: Fail, Detail: strings.Join(missing, "; "), Fix: strings.Join(fixes, "; ")}
	case len(denied) > 0:
		return Result{Status: Warn, Detail: "could not check " + strings.Join(denied, ", "),
			Fix: "allow secretsmanager:DescribeSecret on arn:aws:secretsmanager:*:*:secret:ecr-pullthroughcache/* to check them (ECR itself reads them, not this host)"}
	case len(checked) == 0:
		return Result{Status: Pass, Detail: "no rule needs credentials"}
	}
	return Result{Status: Pass, Detail: "secrets exist for " + strings.Join(checked, ", ")}
}

// secretNameOf returns the secret name in a Secrets Manager ARN, without
// the six-character suffix Secrets Manager appends.
func secretNameOf(arn string) string {
	_, name, ok := strings.Cut(arn, ":secret:")
	if !ok {
		return arn
	}
	if i := strings.LastIndex(name, "-"); i > 0 && len(name)-i == 7 {
		name = name[:i]
	}
	return name
}

// checkProbe resolves the probe image's manifest through the cache, with
// the registry token, straight from ECR (not through the shim). It GETs
// the manifest rather than HEADs it, so that a refusal carries ECR's
// message naming the missing permission.
func (d *Doctor) checkProbe(ctx context.Context, st *state) Result {
	if r := st.needs("ecr-api", "registry"); r != nil {
		return *r
	}
	if st.authToken == "" {
		return Result{Status: Skip, Detail: "needs the registry token of the ecr-api check"}
	}
	if !st.rulesOK || st.mapping == nil {
		return Result{Status: Skip, Detail: "needs the rules check, which did not pass"}
	}
	ecrRef, err := st.mapping.Rewrite(d.ProbeImage)
	if err != nil {
		return Result{Status: Skip, Detail: fmt.Sprintf("probe image %q: %s (see the rules check)", d.ProbeImage, oneLine(err))}
	}
	host, _ := refHost(d.ProbeImage)
	rule, _ := st.mapping.Lookup(host)
	repo, ref, ok := splitECRRef(ecrRef, st.mapping.Registry())
	if !ok {
		return Result{Status: Fail, Detail: fmt.Sprintf("probe image %q rewrites to %q, which is not on %s", d.ProbeImage, ecrRef, st.mapping.Registry()), Fix: "pass --probe-image with a reference of an upstream that has a rule"}
	}
	u := "https://" + st.mapping.Registry() + "/v2/" + repo + "/manifests/" + ref
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Result{Status: Fail, Detail: err.Error(), Fix: "pass another --probe-image"}
	}
	req.Header.Set("Authorization", "Basic "+st.authToken)
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
	}, ", "))
	resp, err := d.HTTPClient.Do(req)
	if err != nil {
		return Result{Status: Fail, Detail: "GET " + ecrRef + ": " + oneLine(err), Fix: "let this host reach " + st.mapping.Registry() + " on port 443"}
	}
	defer resp.Body.Close()
	code, msg := registryError(resp)
	principal := rules.PrincipalARN(st.callerARN)
	if principal == "" {
		principal = "<this host's role ARN>"
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return Result{Status: Pass, Detail: fmt.Sprintf("%s resolved through the cache as %s (%s)", d.ProbeImage, ecrRef, resp.Header.Get("Docker-Content-Digest"))}
	case resp.StatusCode == http.StatusForbidden:
		what := "pulling through the cache was denied"
		for _, a := range rules.GrantActions {
			if strings.Contains(msg, a) {
				what = "the import was denied: " + a + " is missing"
				break
			}
		}
		return Result{Status: Fail, Detail: fmt.Sprintf("%s: %s (%s %s)", ecrRef, what, code, msg),
			Fix: fmt.Sprintf("ecr-ptc rules grant --principal %s --prefix %s (registry policy), or allow ecr:BatchImportUpstreamImage and ecr:CreateRepository on %s in the role's IAM policy",
				principal, rule.Prefix, rules.RepositoryARN(d.Region, st.account, rule.Prefix))}
	case resp.StatusCode == http.StatusNotFound && code == "NAME_UNKNOWN":
		return Result{Status: Fail, Detail: fmt.Sprintf("%s: ECR has no rule for prefix %q (%s)", ecrRef, rule.Prefix, msg),
			Fix: "ecr-ptc rules create --upstream " + host + " --prefix " + rule.Prefix}
	case resp.StatusCode == http.StatusNotFound:
		return Result{Status: Fail, Detail: fmt.Sprintf("%s: ECR could not import %s (%s %s)", ecrRef, d.ProbeImage, code, msg),
			Fix: "check that the image exists upstream; ECR's first import needs a route from the VPC to the upstream (a NAT gateway), and a credentialed upstream needs a valid secret"}
	case resp.StatusCode == http.StatusUnauthorized:
		return Result{Status: Fail, Detail: fmt.Sprintf("%s: the registry refused the token (%s %s)", ecrRef, code, msg), Fix: "check registry in the config file or --registry"}
	}
	return Result{Status: Warn, Detail: fmt.Sprintf("%s: %s (%s %s)", ecrRef, resp.Status, code, msg), Fix: "try again; if it persists, check the AWS Health Dashboard for ECR"}
}

// registryError returns the first error code and message of a registry
// error body, reading at most 64 KiB (a manifest, on success).
func registryError(resp *http.Response) (code, msg string) {
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if json.Unmarshal(b, &body) == nil && len(body.Errors) > 0 {
		return body.Errors[0].Code, body.Errors[0].Message
	}
	return "", strings.TrimSpace(string(b))
}

// splitECRRef splits "<registry>/<repo>:<tag>" or "...@<digest>".
func splitECRRef(ref, registry string) (repo, tagOrDigest string, ok bool) {
	rest, ok := strings.CutPrefix(ref, registry+"/")
	if !ok {
		return "", "", false
	}
	if r, dg, ok := strings.Cut(rest, "@"); ok {
		return r, dg, true
	}
	if i := strings.LastIndex(rest, ":"); i > 0 && !strings.Contains(rest[i:], "/") {
		return rest[:i], rest[i+1:], true
	}
	return rest, "latest", true
}

// isAccessDenied reports whether AWS refused the call to this identity.
func isAccessDenied(err error) bool {
	return awsapi.Classify(err) == awsapi.KindAccessDenied
}

// oneLine flattens an error to one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
