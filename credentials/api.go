package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

// AuthorizationData is the answer of GetAuthorizationToken for one registry.
type AuthorizationData struct {
	// Token is the base64 encoding of "user:password".
	Token string `json:"token"`
	// ExpiresAt is when the token stops being accepted.
	ExpiresAt time.Time `json:"expiresAt"`
	// ProxyEndpoint is the registry URL the token is for, if the API says.
	ProxyEndpoint string `json:"proxyEndpoint,omitempty"`
}

// TokenAPI calls GetAuthorizationToken for one registry: ECR's for a
// private registry (RegistryIds = r.ID, in r.Region), ECR Public's for a
// public one (us-east-1). Implementations wrap [ErrNoCredentials],
// [ErrAccessDenied] and [ErrRegionUnknown] where they apply.
type TokenAPI interface {
	GetAuthorizationToken(ctx context.Context, r ecrhost.Registry) (AuthorizationData, error)
}

// EnvTokenFetcher names the token fetcher program [ExecTokenAPI] runs.
const EnvTokenFetcher = "ECR_PTC_TOKEN_FETCHER"

// TokenFetcherName is the file name of the token fetcher program,
// installed next to docker-credential-ecr-ptc.
const TokenFetcherName = "ecr-ptc-token"

// FetchResponse is what the token fetcher program writes to stdout: the
// authorization data, or an error message with its kind.
type FetchResponse struct {
	AuthorizationData
	Error string `json:"error,omitempty"`
	// Kind is "no-credentials", "access-denied", "region-unknown" or "".
	Kind string `json:"kind,omitempty"`
}

// ErrorKind returns the [FetchResponse.Kind] for err.
func ErrorKind(err error) string {
	switch {
	case errors.Is(err, ErrNoCredentials):
		return "no-credentials"
	case errors.Is(err, ErrAccessDenied):
		return "access-denied"
	case errors.Is(err, ErrRegionUnknown):
		return "region-unknown"
	}
	return ""
}

// fetchError is an error reported by the token fetcher program.
type fetchError struct {
	msg  string
	kind error
}

func (e *fetchError) Error() string { return e.msg }
func (e *fetchError) Unwrap() error { return e.kind }

// ExecTokenAPI is a [TokenAPI] that runs the token fetcher program
// (ecr-ptc-token, which links the AWS SDK) for each call, writing the
// [ecrhost.Registry] as JSON to its stdin and reading a [FetchResponse] from its
// stdout. It keeps the AWS SDK out of docker-credential-ecr-ptc, whose
// warm path then starts in about a millisecond. The program is
// $ECR_PTC_TOKEN_FETCHER, else ecr-ptc-token next to the running
// executable, else ecr-ptc-token on PATH; it is looked up on the first
// call only.
type ExecTokenAPI struct {
	// Path is the program; empty means look it up as described above.
	Path string
	// Stderr receives the program's stderr; nil discards it.
	Stderr io.Writer

	once sync.Once
	path string
	err  error
}

var _ TokenAPI = (*ExecTokenAPI)(nil)

func (a *ExecTokenAPI) resolve() (string, error) {
	a.once.Do(func() {
		switch {
		case a.Path != "":
			a.path = a.Path
		case os.Getenv(EnvTokenFetcher) != "":
			a.path = os.Getenv(EnvTokenFetcher)
		default:
			if self, err := os.Executable(); err == nil {
				p := filepath.Join(filepath.Dir(self), TokenFetcherName)
				if _, err := os.Stat(p); err == nil {
					a.path = p
					return
				}
			}
			p, err := exec.LookPath(TokenFetcherName)
			if err != nil {
				a.err = fmt.Errorf("cannot find the token fetcher %s next to this program or on PATH: reinstall ecr-ptc or set %s", TokenFetcherName, EnvTokenFetcher)
				return
			}
			a.path = p
		}
	})
	return a.path, a.err
}

// GetAuthorizationToken implements [TokenAPI].
func (a *ExecTokenAPI) GetAuthorizationToken(ctx context.Context, r ecrhost.Registry) (AuthorizationData, error) {
	path, err := a.resolve()
	if err != nil {
		return AuthorizationData{}, err
	}
	req, err := json.Marshal(r)
	if err != nil {
		return AuthorizationData{}, fmt.Errorf("encode token request: %w", err)
	}
	cmd := exec.CommandContext(ctx, path)
	cmd.Stdin = bytes.NewReader(req)
	cmd.Stderr = a.Stderr
	out, runErr := cmd.Output()
	var resp FetchResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		if runErr != nil {
			return AuthorizationData{}, fmt.Errorf("token fetcher %q failed: %w", path, runErr)
		}
		return AuthorizationData{}, fmt.Errorf("token fetcher %q answered something that is not JSON", path)
	}
	if resp.Error != "" || runErr != nil {
		msg := resp.Error
		if msg == "" {
			msg = fmt.Sprintf("token fetcher %q failed: %v", path, runErr)
		}
		var kind error
		switch resp.Kind {
		case "no-credentials":
			kind = ErrNoCredentials
		case "access-denied":
			kind = ErrAccessDenied
		case "region-unknown":
			kind = ErrRegionUnknown
		}
		return AuthorizationData{}, &fetchError{msg: strings.TrimSpace(msg), kind: kind}
	}
	return resp.AuthorizationData, nil
}
