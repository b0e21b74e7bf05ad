package warm

import (
	"bytes"
	"strings"
	"testing"
)

func TestDisplayTTY(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	d := &Display{w: &out, mode: "tty", total: 2, inFlight: map[string]int64{}}
	im := Image{Ref: "docker.io/library/nginx:1.27"}
	d.Event(Event{Image: im, Phase: "pulling"})
	d.Event(Event{Image: im, Phase: "bytes", Bytes: 2048})
	d.mu.Lock()
	d.redraw()
	d.mu.Unlock()
	if !strings.Contains(out.String(), "[0/2] 2.0 KiB | docker.io/library/nginx:1.27 2.0 KiB") {
		t.Errorf("live line: %q", out.String())
	}
	d.Event(Event{Image: im, Phase: "done", Result: &Result{Image: im, Status: StatusWarmed, Bytes: 2048}})
	if !strings.Contains(out.String(), "[1/2] warmed docker.io/library/nginx:1.27 (2.0 KiB)\n") {
		t.Errorf("finished line: %q", out.String())
	}
}
