package warm

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Display shows a warm run's progress on w: a live line redrawn on a
// terminal ("tty"), one plain line per finished image ("plain"), or
// nothing ("none"). Its Event method is Options.Events.
type Display struct {
	w     io.Writer
	mode  string // tty, plain, none
	total int

	mu       sync.Mutex
	done     int
	bytes    int64
	inFlight map[string]int64 // image -> bytes
	order    []string
	ticker   *time.Ticker
	quit     chan struct{}
	finished chan struct{}
}

// NewDisplay returns a display of mode on w: tty, plain, none, or auto
// (tty when w is a terminal, else plain). silent (--quiet or --json)
// shows nothing.
func NewDisplay(w io.Writer, mode string, silent bool) *Display {
	if mode == "auto" {
		mode = "plain"
		if isTerminal(w) {
			mode = "tty"
		}
	}
	if silent {
		mode = "none"
	}
	return &Display{w: w, mode: mode, inFlight: map[string]int64{}}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Start begins showing the progress of total images.
func (d *Display) Start(total int) {
	d.mu.Lock()
	d.total = total
	d.mu.Unlock()
	if d.mode != "tty" {
		return
	}
	d.ticker = time.NewTicker(200 * time.Millisecond)
	d.quit = make(chan struct{})
	d.finished = make(chan struct{})
	go func() {
		defer close(d.finished)
		for {
			select {
			case <-d.ticker.C:
				d.mu.Lock()
				d.redraw()
				d.mu.Unlock()
			case <-d.quit:
				return
			}
		}
	}()
}

// Stop ends the display and clears the live line.
func (d *Display) Stop() {
	if d.mode != "tty" {
		return
	}
	d.ticker.Stop()
	close(d.quit)
	<-d.finished
	fmt.Fprint(d.w, "\r\033[K")
}

// redraw writes the live line; d.mu is held.
func (d *Display) redraw() {
	var b strings.Builder
	fmt.Fprintf(&b, "\r\033[K[%d/%d] %s", d.done, d.total, humanBytes(d.bytes))
	for _, ref := range d.order {
		fmt.Fprintf(&b, " | %s %s", ref, humanBytes(d.inFlight[ref]))
	}
	line := b.String()
	if len(line) > 200 {
		line = line[:200]
	}
	fmt.Fprint(d.w, line)
}

// Event records one event of the warmer.
func (d *Display) Event(e Event) {
	if d.mode == "none" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ref := e.Image.Ref
	switch e.Phase {
	case "checking", "pulling":
		if _, ok := d.inFlight[ref]; !ok {
			d.inFlight[ref] = 0
			d.order = append(d.order, ref)
		}
	case "bytes":
		d.inFlight[ref] += e.Bytes
		d.bytes += e.Bytes
	case "done":
		d.finish(ref, e.Result)
	}
}

// finish prints the line of a finished image; d.mu is held.
func (d *Display) finish(ref string, r *Result) {
	d.done++
	delete(d.inFlight, ref)
	d.order = slices.DeleteFunc(d.order, func(s string) bool { return s == ref })
	line := fmt.Sprintf("[%d/%d] %s %s", d.done, d.total, r.Status, ref)
	switch {
	case r.Reason != "":
		line += ": " + string(r.Reason)
	case r.Status == StatusWarmed:
		line += fmt.Sprintf(" (%s)", humanBytes(r.Bytes))
	}
	if d.mode == "tty" {
		fmt.Fprint(d.w, "\r\033[K")
	}
	fmt.Fprintln(d.w, line)
	if d.mode == "tty" {
		d.redraw()
	}
}
