// Command ecrfake runs the local fake ECR (package test/ecrfake) until
// interrupted, for demos and for poking at it by hand:
//
//	go run ./test/cmd/ecrfake --ca-out /tmp/ecrfake-ca.pem --env-out /tmp/ecrfake.env
//
// It prints the environment that points AWS SDKs at the fake and the
// /etc/hosts lines its hostnames need, then logs every request to stderr.
package main
