package hosts

import (
	"cmp"
	"fmt"
	"testing"
)

// FuzzParseDockerVersion feeds arbitrary `dockerd --version` output to the
// version parsers: they never panic, the version dockerEngine keeps parses
// again to the same version and major, a major printed as a version parses
// back to itself, and versions order as their majors do.
func FuzzParseDockerVersion(f *testing.F) {
	for _, s := range []string{
		"Docker version 20.10.24+dfsg1, build 5d6db84", "28.2.2", "v29.0.0-rc.1", " 27.5.1 ",
		"Docker version 99999999999999999999999.1", "version 1", "", "Docker version 0.0.0",
	} {
		f.Add(s, uint16(27), uint16(29))
	}
	f.Fuzz(func(t *testing.T, s string, a, b uint16) {
		major := ParseDockerVersion(s)
		if major < 0 {
			t.Fatalf("ParseDockerVersion(%q) = %d, a negative major", s, major)
		}
		e := dockerEngine(s, nil, nil)
		if e.Major != major {
			t.Fatalf("dockerEngine(%q).Major = %d, ParseDockerVersion says %d", s, e.Major, major)
		}
		if again := dockerEngine(e.Version, nil, nil); again.Version != e.Version || again.Major != e.Major {
			t.Fatalf("dockerEngine(%q) keeps version %q major %d, which parses again to %q major %d", s, e.Version, e.Major, again.Version, again.Major)
		}
		if major > 0 {
			printed := fmt.Sprintf("Docker version %d.0.0, build 1", major)
			if got := ParseDockerVersion(printed); got != major {
				t.Fatalf("major %d of %q printed as %q parses to %d", major, s, printed, got)
			}
		}
		va := ParseDockerVersion(fmt.Sprintf("Docker version %d.%d.1", a, b))
		vb := ParseDockerVersion(fmt.Sprintf("%d.%d", b, a))
		if got, want := cmp.Compare(va, vb), cmp.Compare(a, b); got != want {
			t.Fatalf("versions %d.%d and %d.%d compare %d, their majors %d", a, b, b, a, got, want)
		}
	})
}
