// Package e2e holds end-to-end tests that drive real clients (containerd 1.6
// and 2.x with ctr and CRI, dockerd and the docker CLI, skopeo) against the
// local fake ECR in test/ecrfake, using the daemons of test/daemon.
//
// The tests need root, util-linux's unshare and the packages that
// .ci/install-deps installs; without them they skip locally and fail when
// CI=true. They must never reach a network beyond 127.0.0.1, change the
// machine's real /etc, or stop a process they did not start.
package e2e
