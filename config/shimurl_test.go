package config

import "testing"

func TestMirrorHostURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, base, upstream, want string }{
		{"plain", "http://127.0.0.1:5050", "quay.io", "http://127.0.0.1:5050/mirror/quay.io/v2"},
		{"docker hub", "http://127.0.0.1:5050", "docker.io", "http://127.0.0.1:5050/mirror/docker.io/v2"},
		{"trailing slash", "http://127.0.0.1:5050/", "docker.io", "http://127.0.0.1:5050/mirror/docker.io/v2"},
		{"trailing slash and case", "http://127.0.0.1:5050/", "Quay.io", "http://127.0.0.1:5050/mirror/quay.io/v2"},
		{"port and case", "http://[::1]:5050", "Registry.Example:5000", "http://[::1]:5050/mirror/registry.example:5000/v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := MirrorHostURL(tt.base, tt.upstream); got != tt.want {
				t.Fatalf("MirrorHostURL(%q, %q) = %q, want %q", tt.base, tt.upstream, got, tt.want)
			}
		})
	}
}
