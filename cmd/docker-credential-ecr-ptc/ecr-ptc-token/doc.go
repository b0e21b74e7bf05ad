// Command ecr-ptc-token fetches one ECR authorization token with the AWS
// SDK for docker-credential-ecr-ptc, which runs it on a cache miss so that
// the helper itself does not link the SDK. It reads the registry as JSON
// on stdin and writes the token as JSON on stdout; it is not meant to be
// run by people. Install it next to docker-credential-ecr-ptc.
//
// It owns only the wiring to awsapi.ServeTokenFetcher; it must never log or
// print the token except in its JSON answer on stdout.
package main
