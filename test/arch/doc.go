// Package arch holds the test that keeps ecr-ptc's dependencies pointing
// one way, as README's Architecture section draws them: pure packages do no
// I/O, the credential helper and the shim link no AWS SDK, and mirror,
// hosts and proxy never import each other. It has no code of its own and
// must never be imported.
package arch
