// Command demo shows ecr-ptc's mirror shim end to end on one machine, with
// nothing but Go: it starts the local fake ECR (with its fake upstream
// registries), the shim in front of it, writes the hosts.toml files
// `ecr-ptc configure containerd` would write into a temporary directory, and
// pulls unchanged public references through them with containerd's own
// resolver and fetcher, printing every hop and checking each digest against
// the upstream's. It removes everything it created when it ends.
//
//	make demo   # go run ./test/cmd/demo
package main
