package ecrfake_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// Example pulls a manifest through the pull-through cache with plain
// net/http: the docker-hub rule imports library/nginx from the in-process
// Docker Hub on first request.
func Example() {
	ctx := context.Background()
	s, err := ecrfake.Start(ctx, ecrfake.Options{})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	password, _ := s.IssueToken() // or GetAuthorizationToken through s.Env()
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead,
		"https://"+s.RegistryHost()+"/v2/docker-hub/library/nginx/manifests/latest", nil)
	req.SetBasicAuth("AWS", password)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	want := s.Upstream("docker.io").Image("library/nginx:latest").Digest
	fmt.Println(resp.StatusCode, resp.Header.Get("Docker-Content-Digest") == want)
	fmt.Println(s.Repositories())
	// Output:
	// 200 true
	// [docker-hub/library/nginx]
}
