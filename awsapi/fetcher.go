package awsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

// ServeTokenFetcher is the whole of the ecr-ptc-token program that
// docker-credential-ecr-ptc runs on a cache miss ([credentials.ExecTokenAPI]):
// it reads a [ecrhost.Registry] as JSON from in, calls GetAuthorizationToken
// through api (an [SDKTokenAPI] when nil) within timeout, and writes an
// [credentials.FetchResponse] as JSON to out. It returns the exit code: 0 on
// success, 1 on an error (described in the response), 2 on a malformed
// request.
func ServeTokenFetcher(ctx context.Context, api credentials.TokenAPI, in io.Reader, out io.Writer, timeout time.Duration) int {
	if api == nil {
		api = &SDKTokenAPI{}
	}
	var r ecrhost.Registry
	if err := json.NewDecoder(io.LimitReader(in, 64<<10)).Decode(&r); err != nil {
		_ = json.NewEncoder(out).Encode(credentials.FetchResponse{Error: fmt.Sprintf("read token request: %v", err)})
		return 2
	}
	if r.Host == "" || (!r.Public && r.ID == "") {
		_ = json.NewEncoder(out).Encode(credentials.FetchResponse{Error: "token request names no registry"})
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := api.GetAuthorizationToken(ctx, r)
	if err != nil {
		_ = json.NewEncoder(out).Encode(credentials.FetchResponse{Error: credentials.Redact(err.Error()), Kind: credentials.ErrorKind(err)})
		return 1
	}
	if err := json.NewEncoder(out).Encode(credentials.FetchResponse{AuthorizationData: d}); err != nil {
		return 1
	}
	return 0
}
