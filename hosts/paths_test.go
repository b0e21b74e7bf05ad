package hosts

import "testing"

func TestSystemPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, root, p, want string
		wantErr             bool
	}{
		{name: "below root", root: "/tmp/r", p: "/tmp/r/etc/docker", want: "/etc/docker"},
		{name: "root itself", root: "/tmp/r", p: "/tmp/r", want: "/"},
		{name: "root with slash", root: "/tmp/r/", p: "/tmp/r/etc", want: "/etc"},
		{name: "real root", root: "/", p: "/var/lib/ecr-ptc", want: "/var/lib/ecr-ptc"},
		{name: "unclean", root: "/", p: "/var//lib/./x", want: "/var/lib/x"},
		{name: "outside root", root: "/tmp/r", p: "/tmp/other/etc", wantErr: true},
		{name: "parent of root", root: "/tmp/r", p: "/tmp", wantErr: true},
		{name: "prefix but not below", root: "/tmp/r", p: "/tmp/rx/etc", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := SystemPath(tt.root, tt.p)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("SystemPath(%q, %q) = %q, %v; want %q, error %v", tt.root, tt.p, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
