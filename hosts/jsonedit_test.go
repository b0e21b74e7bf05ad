package hosts

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMergeRegistryMirror(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		in          string
		missing     bool
		wantChanged bool
	}{
		{name: "missing", missing: true, wantChanged: true},
		{name: "blank", in: "\n", wantChanged: true},
		{name: "empty-object", in: "{}\n", wantChanged: true},
		{name: "four-spaces", in: "{\n    \"log-level\": \"warn\",\n    \"features\": {\"buildkit\": true}\n}\n", wantChanged: true},
		{name: "tabs", in: "{\n\t\"data-root\": \"/data/docker\",\n\t\"live-restore\": true\n}", wantChanged: true},
		{name: "compact", in: `{"debug":true,"storage-driver":"overlay2"}`, wantChanged: true},
		{name: "existing-mirrors-multiline", in: "{\n  \"registry-mirrors\": [\n    \"https://mirror.example.internal\"\n  ],\n  \"debug\": false\n}\n", wantChanged: true},
		{name: "existing-mirrors-inline", in: "{\"registry-mirrors\": [\"https://mirror.example.internal\"]}\n", wantChanged: true},
		{name: "existing-mirrors-empty", in: "{\n  \"registry-mirrors\": [ ]\n}\n", wantChanged: true},
		{name: "mirrors-null", in: "{\"registry-mirrors\": null, \"debug\": true}\n", wantChanged: true},
		{name: "already-there", in: "{\n  \"registry-mirrors\": [\"https://m.example\", \"http://127.0.0.1:5050/\"]\n}\n", wantChanged: false},
		{name: "unicode-and-escapes", in: "{\n  \"labels\": [\"owner=\\\"j\\u00f6rg\\\"\", \"x}]\"]\n}\n", wantChanged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in []byte
			if !tt.missing {
				in = []byte(tt.in)
			}
			out, changed, err := MergeRegistryMirror(in, DefaultMirrorURL)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			golden(t, filepath.Join("daemon-json", tt.name+".golden"), out)
			checkMergedJSON(t, in, out, "registry-mirrors")
			var v struct {
				Mirrors []string `json:"registry-mirrors"`
			}
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatal(err)
			}
			if len(v.Mirrors) == 0 || (tt.wantChanged && v.Mirrors[0] != DefaultMirrorURL) {
				t.Errorf("registry-mirrors = %q, want %q first", v.Mirrors, DefaultMirrorURL)
			}
			again, changed, err := MergeRegistryMirror(out, DefaultMirrorURL)
			if err != nil || changed || !bytes.Equal(again, out) {
				t.Errorf("second merge: changed=%v err=%v", changed, err)
			}
		})
	}
}

// checkMergedJSON checks that out is valid JSON equal to in except for key.
func checkMergedJSON(t *testing.T, in, out []byte, key string) {
	t.Helper()
	var before, after map[string]any
	if err := json.Unmarshal(out, &after); err != nil {
		t.Fatalf("merged JSON does not parse: %v\n%s", err, out)
	}
	if len(bytes.TrimSpace(in)) > 0 {
		if err := json.Unmarshal(in, &before); err != nil {
			t.Fatal(err)
		}
	} else {
		before = map[string]any{}
	}
	delete(before, key)
	delete(after, key)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("merge changed other keys: %v -> %v", before, after)
	}
}

func TestMergeCredHelper(t *testing.T) {
	t.Parallel()
	const registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	tests := []struct {
		name        string
		in          string
		missing     bool
		wantChanged bool
		wantNote    bool
	}{
		{name: "missing", missing: true, wantChanged: true},
		{name: "docker-cli", in: "{\n\t\"auths\": {\n\t\t\"https://index.docker.io/v1/\": {}\n\t},\n\t\"currentContext\": \"default\"\n}", wantChanged: true},
		{name: "compact", in: `{"auths":{}}`, wantChanged: true},
		{name: "existing-helpers", in: "{\n  \"credHelpers\": {\n    \"gcr.io\": \"gcloud\"\n  }\n}\n", wantChanged: true},
		{name: "existing-empty-helpers", in: "{\n  \"credHelpers\": {}\n}\n", wantChanged: true},
		{name: "other-helper", in: "{\"credHelpers\": {\"" + registry + "\": \"ecr-login\"}}\n", wantNote: true},
		{name: "already-there", in: "{\"credHelpers\": {\"" + registry + "\": \"ecr-ptc\"}}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in []byte
			if !tt.missing {
				in = []byte(tt.in)
			}
			out, changed, note, err := MergeCredHelper(in, registry, CredentialHelper)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.wantChanged || (note != "") != tt.wantNote {
				t.Errorf("changed, note = %v, %q; want %v, note %v", changed, note, tt.wantChanged, tt.wantNote)
			}
			golden(t, filepath.Join("docker-config", tt.name+".golden"), out)
			checkMergedJSON(t, in, out, "credHelpers")
			var v struct {
				Helpers map[string]string `json:"credHelpers"`
			}
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatal(err)
			}
			if want := CredentialHelper; !tt.wantNote && v.Helpers[registry] != want {
				t.Errorf("credHelpers[%q] = %q, want %q", registry, v.Helpers[registry], want)
			}
			again, changed, _, err := MergeCredHelper(out, registry, CredentialHelper)
			if err != nil || changed || !bytes.Equal(again, out) {
				t.Errorf("second merge: changed=%v err=%v", changed, err)
			}
		})
	}
}

func TestMergeJSONRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"syntax", "{\n  \"debug\": true,\n}\n", "line 3, column 1"},
		{"array", "[]", "not a JSON object"},
		{"mirrors-not-list", "{\"registry-mirrors\": \"http://x\"}", "must be a list"},
		{"helpers-not-object", "{\"credHelpers\": []}", "must be an object"},
		{"truncated", "{\"a\": ", "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err1 := MergeRegistryMirror([]byte(tt.in), DefaultMirrorURL)
			_, _, _, err2 := MergeCredHelper([]byte(tt.in), "r.example", "ecr-ptc")
			if (err1 == nil || !strings.Contains(err1.Error(), tt.want)) && (err2 == nil || !strings.Contains(err2.Error(), tt.want)) {
				t.Fatalf("errors = %v / %v, want one mentioning %q", err1, err2, tt.want)
			}
		})
	}
}
