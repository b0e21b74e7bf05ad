package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is returned by ReadCapped for a file over its limit.
var ErrTooLarge = errors.New("file too large")

// ReadCapped reads the file at path, refusing one larger than limit bytes
// with an error that wraps ErrTooLarge, without reading more than limit+1
// bytes of it. Files ecr-ptc parses (configs it edits, the saved rule set,
// the shim's counters) are read through it, so a huge or endless file
// never fills memory.
func ReadCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrTooLarge, limit)
	}
	return data, nil
}
