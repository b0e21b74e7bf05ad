package ecrfake

import (
	"context"
	"net/http"
	"time"
)

// slowChunk is how many body bytes a slowWriter sends per pause.
const slowChunk = 16 << 10

// slowWriter sends a body in 16 KiB pieces, pausing before each: a slow
// link between S3 and the client.
type slowWriter struct {
	http.ResponseWriter
	pause time.Duration
	ctx   context.Context
}

func (s *slowWriter) Write(b []byte) (int, error) {
	var n int
	for len(b) > 0 {
		t := time.NewTimer(s.pause)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return n, s.ctx.Err()
		}
		k := min(len(b), slowChunk)
		m, err := s.ResponseWriter.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		if f, ok := s.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		b = b[k:]
	}
	return n, nil
}
