package main

import (
	"path/filepath"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// fakeOptions keeps the fake's blob store inside the demo's temp dir.
func fakeOptions(tmp string) ecrfake.Options {
	return ecrfake.Options{Dir: filepath.Join(tmp, "ecrfake")}
}
