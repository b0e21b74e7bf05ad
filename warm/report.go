package warm

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one image or skipped reference of a Report.
type Row struct {
	Ref       string   `json:"ref"`
	ECRRef    string   `json:"ecrRef,omitempty"`
	Status    string   `json:"status"`
	Reason    string   `json:"reason,omitempty"`
	Detail    string   `json:"detail,omitempty"`
	Sources   []string `json:"sources,omitempty"`
	Manifests int      `json:"manifests,omitempty"`
	Blobs     int      `json:"blobs,omitempty"`
	Bytes     int64    `json:"bytes,omitempty"`
	Seconds   float64  `json:"seconds,omitempty"`
}

// Uncovered is a registry without a rule and the command that adds one.
type Uncovered struct {
	Upstream string `json:"upstream"`
	Command  string `json:"command"`
}

// Report is the outcome of a warm run, as `ecr-ptc warm` prints it.
type Report struct {
	Registry  string         `json:"registry"`
	Check     bool           `json:"check"`
	Images    []Row          `json:"images"`
	Uncovered []Uncovered    `json:"uncovered"`
	Summary   map[string]int `json:"summary"`
}

// NewReport lists results and then skipped references (as failed), and
// the rules create command of each uncovered registry. check says the
// run only checked the cache.
func NewReport(registry string, results []Result, skipped []Skipped, uncovered []string, check bool) *Report {
	r := &Report{Registry: registry, Check: check, Images: []Row{}, Uncovered: []Uncovered{}, Summary: map[string]int{}}
	for _, res := range results {
		r.addRow(Row{Ref: res.Image.Ref, ECRRef: res.Image.ECRRef(registry), Status: string(res.Status), Reason: string(res.Reason), Detail: res.Detail,
			Sources: res.Image.Sources, Manifests: res.Manifests, Blobs: res.Blobs, Bytes: res.Bytes, Seconds: res.Duration.Round(time.Millisecond).Seconds()})
	}
	for _, s := range skipped {
		r.addRow(Row{Ref: s.Ref, Status: string(StatusFailed), Reason: string(s.Reason), Detail: s.Detail, Sources: s.Sources})
	}
	for _, h := range uncovered {
		r.Uncovered = append(r.Uncovered, Uncovered{h, rulesCreateCommand(h)})
	}
	return r
}

func (r *Report) addRow(row Row) {
	r.Images = append(r.Images, row)
	r.Summary[row.Status]++
}

// rulesCreateCommand is the command that creates a rule for host.
func rulesCreateCommand(host string) string {
	return "ecr-ptc rules create --upstream " + host
}

// NotDone counts the images that are neither cached nor warmed.
func (r *Report) NotDone() int {
	return r.Summary[string(StatusFailed)] + r.Summary[string(StatusNotCached)]
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes a table of the images (with quiet, only those with a
// problem), a summary line and the rules create commands still needed.
func (r *Report) WriteText(w io.Writer, quiet bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tIMAGE\tDETAIL")
	for _, row := range r.Images {
		if quiet && row.Reason == "" {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", row.Status, row.Ref, row.detail())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var parts []string
	for _, s := range []Status{StatusCached, StatusWarmed, StatusNotCached, StatusFailed} {
		if n := r.Summary[string(s)]; n > 0 || s != StatusNotCached || r.Check {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	fmt.Fprintf(w, "\n%s (registry %s)\n", strings.Join(parts, ", "), r.Registry)
	if len(r.Uncovered) > 0 {
		fmt.Fprintln(w, "\nNo pull-through cache rule covers these registries; create one for each, then run warm again:")
		for _, u := range r.Uncovered {
			fmt.Fprintf(w, "  %s\n", u.Command)
		}
	}
	return nil
}

// detail is the table's DETAIL column: the reason, or what was pulled.
func (row Row) detail() string {
	switch {
	case row.Reason != "":
		return row.Reason + ": " + row.Detail
	case row.Status == string(StatusWarmed):
		return fmt.Sprintf("%d manifests, %d blobs, %s in %.1fs", row.Manifests, row.Blobs, humanBytes(row.Bytes), row.Seconds)
	}
	return ""
}

// humanBytes formats n in binary units: "512 B", "3.0 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
