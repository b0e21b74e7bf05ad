package setup

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/hosts"
)

// View is one component in the output of a configuring command.
type View struct {
	Component string   `json:"component"`
	Changed   []string `json:"changed"`
	Removed   []string `json:"removed,omitempty"`
	Unchanged []string `json:"unchanged"`
	Restart   []string `json:"restart,omitempty"`
	Notes     []string `json:"notes,omitempty"`
	Diff      string   `json:"diff,omitempty"`
}

// Outcome is what a configuring command did, or with DryRun would do.
type Outcome struct {
	Root       string       `json:"root"`
	DryRun     bool         `json:"dryRun"`
	Components []View       `json:"components"`
	Result     hosts.Result `json:"result"`
	Extra      any          `json:"extra,omitempty"`
}

// Apply applies plans below root through the undo journal, or with dryRun
// only describes them (with a unified diff each). extra is shown in JSON
// output as it is.
func Apply(root string, dryRun bool, plans []hosts.Plan, extra any) (*Outcome, error) {
	o := &Outcome{Root: root, DryRun: dryRun, Extra: extra}
	for _, p := range plans {
		o.Components = append(o.Components, view(p, dryRun))
	}
	if !dryRun {
		res, err := hosts.Apply(root, plans...)
		if err != nil {
			return nil, err
		}
		o.Result = res
	}
	return o, nil
}

// view sorts a plan's changes by what happens to each file.
func view(p hosts.Plan, dryRun bool) View {
	v := View{Component: p.Component, Changed: []string{}, Unchanged: []string{}, Restart: p.Restart, Notes: p.Notes}
	for _, c := range p.Changes {
		switch {
		case c.Changed() && c.Remove:
			v.Removed = append(v.Removed, c.Path)
		case c.Changed():
			v.Changed = append(v.Changed, c.Path)
		default:
			v.Unchanged = append(v.Unchanged, c.Path)
		}
	}
	if dryRun {
		v.Diff = p.Diff()
	}
	return v
}

// WriteJSON writes o as indented JSON.
func (o *Outcome) WriteJSON(w io.Writer) error {
	return writeJSON(w, o)
}

// WriteText writes the diffs of a dry run and, unless quiet, a line per
// file and note.
func (o *Outcome) WriteText(w io.Writer, quiet bool) {
	for _, v := range o.Components {
		if o.DryRun {
			fmt.Fprint(w, v.Diff)
		}
		if !quiet {
			v.writeText(w, o.DryRun)
		}
	}
}

// writeText writes a line per file and note of v.
func (v View) writeText(w io.Writer, dryRun bool) {
	verb, removed := "wrote", "removed"
	if dryRun {
		verb, removed = "would write", "would remove"
	}
	for _, p := range v.Changed {
		fmt.Fprintf(w, "%s: %s %s\n", v.Component, verb, p)
	}
	for _, p := range v.Removed {
		fmt.Fprintf(w, "%s: %s %s\n", v.Component, removed, p)
	}
	for _, p := range v.Unchanged {
		fmt.Fprintf(w, "%s: unchanged %s\n", v.Component, p)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(w, "%s: %s\n", v.Component, strings.TrimPrefix(n, v.Component+": "))
	}
}

// Restarts lists the services the plans need restarted, in order.
func Restarts(plans []hosts.Plan) []string {
	var out []string
	for _, p := range plans {
		out = append(out, p.Restart...)
	}
	return out
}

// Undone is what an undo did.
type Undone struct {
	Root   string       `json:"root"`
	Result hosts.Result `json:"result"`
}

// Undo reverses the named components (every one when none is named)
// below root; force also restores files that changed after ecr-ptc wrote
// them. The returned Undone holds what was done even with an error.
func Undo(root string, force bool, components ...string) (*Undone, error) {
	res, err := hosts.Undo(root, force, components...)
	return &Undone{Root: root, Result: res}, err
}

// WriteJSON writes u as indented JSON.
func (u *Undone) WriteJSON(w io.Writer) error {
	return writeJSON(w, u)
}

// WriteText writes a line per restored and removed file, and the notes.
func (u *Undone) WriteText(w io.Writer) {
	for _, p := range u.Result.Restored {
		fmt.Fprintf(w, "restored %s\n", p)
	}
	for _, p := range u.Result.Removed {
		fmt.Fprintf(w, "removed %s\n", p)
	}
	for _, n := range u.Result.Notes {
		fmt.Fprintln(w, n)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
