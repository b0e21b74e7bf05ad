package config

import (
	"strings"
	"testing"
)

func TestMirrorProxyKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		edit    func(m *MirrorConfig)
		wantErr string
	}{
		{name: "proxy off by default", edit: func(*MirrorConfig) {}},
		{name: "loopback proxy", edit: func(m *MirrorConfig) { m.ProxyListen = "127.0.0.1:5051" }},
		{name: "proxy on all interfaces", edit: func(m *MirrorConfig) { m.ProxyListen = ":5051" }, wantErr: "mirror.proxy_listen"},
		{name: "proxy allowed elsewhere", edit: func(m *MirrorConfig) { m.ProxyListen = "10.0.0.1:5051"; m.AllowNonLoopback = true }},
		{name: "proxy without port", edit: func(m *MirrorConfig) { m.ProxyListen = "127.0.0.1" }, wantErr: "want host:port"},
		{name: "proxy on the shim's address", edit: func(m *MirrorConfig) { m.ProxyListen = m.Listen }, wantErr: "port of its own"},
		{name: "upstream proxy", edit: func(m *MirrorConfig) { m.UpstreamProxy = "http://proxy.internal:3128" }},
		{name: "upstream proxy without scheme", edit: func(m *MirrorConfig) { m.UpstreamProxy = "user:secret@proxy.internal:3128" }, wantErr: "mirror.upstream_proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var m MirrorConfig
			m.applyDefaults()
			tt.edit(&m)
			err := m.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want an error with %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Fatalf("the error shows the proxy password: %v", err)
			}
		})
	}
	var m MirrorConfig
	m.applyDefaults()
	if !m.FallbackEnabled() || m.CACert != DefaultMirrorCACert || m.CAKey != DefaultMirrorCAKey || m.ProxyListen != "" {
		t.Fatalf("defaults: %+v", m)
	}
}
