// Package daemon runs real container clients and daemons for end-to-end
// tests: Debian's containerd 1.6, containerd v2.x (built by .ci/install-deps),
// dockerd, the docker CLI, ctr and skopeo.
//
// Every daemon gets its own root, state, sockets and logs under temporary
// directories, listens only on unix sockets (and 127.0.0.1 where a plugin
// insists on TCP), and is stopped by its process id when the test ends.
// Processes that must resolve test host names or read test trust stores run
// in a private mount namespace (see [Namespace]) in which temporary files are
// bind-mounted over paths such as /etc/hosts and /etc/docker.
//
// The package must never change the machine's real /etc, never signal a
// process it did not start, and never stop processes by name. Tests call
// [Require] first: it skips a test whose binaries or privileges are missing,
// and fails it instead when the environment variable CI is "true".
package daemon
