package credentials

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/ecr-ptc/ecr-ptc/credentials/ecrauth"
)

// ServeTokenFetcher is the whole of the ecr-ptc-token program that
// docker-credential-ecr-ptc runs on a cache miss ([ecrauth.ExecTokenAPI]):
// it reads a [Registry] as JSON from in, calls GetAuthorizationToken
// through api (an [SDKTokenAPI] when nil) within timeout, and writes an
// [ecrauth.FetchResponse] as JSON to out. It returns the exit code: 0 on
// success, 1 on an error (described in the response), 2 on a malformed
// request.
func ServeTokenFetcher(ctx context.Context, api TokenAPI, in io.Reader, out io.Writer, timeout time.Duration) int {
	if api == nil {
		api = &SDKTokenAPI{}
	}
	var r Registry
	if err := json.NewDecoder(io.LimitReader(in, 64<<10)).Decode(&r); err != nil {
		_ = json.NewEncoder(out).Encode(ecrauth.FetchResponse{Error: fmt.Sprintf("read token request: %v", err)})
		return 2
	}
	if r.Host == "" || (!r.Public && r.ID == "") {
		_ = json.NewEncoder(out).Encode(ecrauth.FetchResponse{Error: "token request names no registry"})
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := api.GetAuthorizationToken(ctx, r)
	if err != nil {
		_ = json.NewEncoder(out).Encode(ecrauth.FetchResponse{Error: ecrauth.Redact(err.Error()), Kind: ecrauth.ErrorKind(err)})
		return 1
	}
	if err := json.NewEncoder(out).Encode(ecrauth.FetchResponse{AuthorizationData: d}); err != nil {
		return 1
	}
	return 0
}
