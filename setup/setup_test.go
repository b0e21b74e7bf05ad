package setup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/service"
)

// fakeServices is systemd as setup's tests want it; it records what setup
// ran.
type fakeServices struct {
	available, installed, enabled bool
	failEnable                    error
	ran                           []string
}

func (f *fakeServices) Available() bool              { return f.available }
func (f *fakeServices) Installed() bool              { return f.installed }
func (f *fakeServices) Enabled(context.Context) bool { return f.enabled }

func (f *fakeServices) Enable(context.Context) (string, error) {
	if f.failEnable != nil {
		return "", f.failEnable
	}
	f.ran = append(f.ran, "enable")
	return "enable", nil
}

func (f *fakeServices) Disable(context.Context) (string, error) {
	f.ran = append(f.ran, "disable")
	return "disable", nil
}

func (f *fakeServices) Restart(_ context.Context, units ...string) error {
	f.ran = append(f.ran, "restart "+strings.Join(units, ","))
	return nil
}

func TestEngines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, flag string
		want       string
		usage      bool
		wantErr    string
	}{
		{name: "list", flag: "docker,containerd", want: "docker containerd"},
		{name: "duplicates and spaces", flag: "podman, podman", want: "podman"},
		{name: "unknown", flag: "cri-o", usage: true, wantErr: `unknown engine "cri-o"`},
		{name: "auto finds nothing", flag: "auto", wantErr: "no container engine found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Engines(tt.flag, t.TempDir())
			if tt.wantErr != "" {
				var ue UsageError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.As(err, &ue) != tt.usage {
					t.Fatalf("Engines(%q) = %v, %v; want an error naming %q (usage error: %v)", tt.flag, got, err, tt.wantErr, tt.usage)
				}
				return
			}
			if err != nil || strings.Join(got, " ") != tt.want {
				t.Fatalf("Engines(%q) = %v, %v; want %s", tt.flag, got, err, tt.want)
			}
		})
	}
}

func TestServicePlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		svc        fakeServices
		wantNote   string
		wantMarker bool
	}{
		{name: "no systemctl", svc: fakeServices{}, wantNote: "systemctl not found"},
		{name: "not installed", svc: fakeServices{available: true}, wantNote: "is not installed"},
		{name: "enabled already", svc: fakeServices{available: true, installed: true, enabled: true}, wantNote: "enabled already"},
		{name: "setup enables it", svc: fakeServices{available: true, installed: true}, wantMarker: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			p, err := ServicePlan(t.Context(), root, &tt.svc)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantNote != "" && (len(p.Notes) != 1 || !strings.Contains(p.Notes[0], tt.wantNote)) {
				t.Fatalf("notes %q, want one naming %q", p.Notes, tt.wantNote)
			}
			if got := len(p.Changes) == 1 && p.Changes[0].Path == ServiceMarker; got != tt.wantMarker {
				t.Fatalf("changes %+v; want the service marker: %v", p.Changes, tt.wantMarker)
			}
			if tt.wantMarker && !strings.Contains(string(p.Changes[0].New), "dir /etc\n") {
				t.Fatalf("marker %q: want it to record /etc, which enabling creates below an empty root", p.Changes[0].New)
			}
		})
	}
}

// TestServiceLifecycle applies the service marker, finishes (which
// enables the unit), then undoes, which disables it and removes the
// directories enabling created.
func TestServiceLifecycle(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	svc := &fakeServices{available: true, installed: true}
	r := Request{Root: root, Service: true}
	plans, _, err := Plans(t.Context(), r, svc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(root, false, plans, nil); err != nil {
		t.Fatal(err)
	}
	said, err := Finish(t.Context(), r, plans, false, svc)
	if err != nil || len(said) != 1 || said[0] != "service: enable "+service.Unit {
		t.Fatalf("Finish said %q, %v", said, err)
	}
	// What systemctl enable would have created.
	if err := os.MkdirAll(filepath.Join(root, "/etc/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := BeforeUndo(root)
	if _, err := Undo(root, false); err != nil {
		t.Fatal(err)
	}
	said, err = AfterUndo(t.Context(), root, before, svc)
	if err != nil || len(said) != 1 || said[0] != "service: disable "+service.Unit {
		t.Fatalf("AfterUndo said %q, %v", said, err)
	}
	if strings.Join(svc.ran, ";") != "enable;disable" {
		t.Fatalf("ran %q", svc.ran)
	}
	if _, err := os.Stat(filepath.Join(root, "etc")); !os.IsNotExist(err) {
		t.Fatalf("/etc below the root is left (%v): enabling created it, undo removes it", err)
	}
}

func TestFinishRestarts(t *testing.T) {
	t.Parallel()
	plans := []hosts.Plan{{Component: "containerd", Restart: []string{"containerd"}}, {Component: "docker", Restart: []string{"docker"}}}
	tests := []struct {
		name    string
		root    string
		restart bool
		want    string
		wantRan string
	}{
		{name: "says what to restart", root: "/", want: "restart containerd and docker to apply the new configuration (or run setup with --restart)"},
		{name: "restarts on the running system", root: "/", restart: true, want: "restarted containerd, docker", wantRan: "restart containerd,docker"},
		{name: "never restarts below another root", root: "/tmp/tree", restart: true, want: "restart containerd and docker to apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc := &fakeServices{}
			said, err := Finish(t.Context(), Request{Root: tt.root}, plans, tt.restart, svc)
			if err != nil || len(said) != 1 || !strings.HasPrefix(said[0], tt.want) {
				t.Fatalf("said %q, %v; want %q", said, err, tt.want)
			}
			if strings.Join(svc.ran, ";") != tt.wantRan {
				t.Fatalf("ran %q, want %q", svc.ran, tt.wantRan)
			}
		})
	}
}

func TestFinishEnableFails(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	svc := &fakeServices{available: true, installed: true, failEnable: errors.New("systemctl enable: exit status 1")}
	r := Request{Root: root, Service: true}
	plans, _, err := Plans(t.Context(), r, svc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(root, false, plans, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Finish(t.Context(), r, plans, false, svc); err == nil || !strings.Contains(err.Error(), "systemctl enable") {
		t.Fatalf("Finish = %v, want the systemctl error", err)
	}
}

func TestOutcomeText(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	plan := hosts.Plan{Component: "state", Notes: []string{"state: a note"}, Changes: []hosts.Change{{Path: "/var/lib/ecr-ptc/x.json", New: []byte("{}\n"), Mode: 0o644, Owned: true}}}
	tests := []struct {
		name   string
		dryRun bool
		want   []string
	}{
		{name: "dry run", dryRun: true, want: []string{"+{}", "state: would write /var/lib/ecr-ptc/x.json", "state: a note"}},
		{name: "applied", want: []string{"state: wrote /var/lib/ecr-ptc/x.json", "state: a note"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Apply(root, tt.dryRun, []hosts.Plan{plan}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			out.WriteText(&b, false)
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
			_, err = os.Stat(filepath.Join(root, "/var/lib/ecr-ptc/x.json"))
			if exists := err == nil; exists == tt.dryRun {
				t.Errorf("file exists: %v after a run with dry run %v", exists, tt.dryRun)
			}
		})
	}
}

func TestRulesPlanRefusesAStateDirOutsideTheRoot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if _, err := RulesPlan(root, "/var/lib/ecr-ptc", nil); err == nil || !strings.Contains(err.Error(), "is not below --root") {
		t.Fatalf("RulesPlan = %v, want an error saying the state directory is not below --root", err)
	}
}
