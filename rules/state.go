package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ecr-ptc/ecr-ptc/atomicfile"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// StateFile is the name of the saved rule set inside the state directory.
const StateFile = "rules.json"

// Saved is the last rule set discovered from the account.
type Saved struct {
	// Registry is the ECR registry host the rules belong to.
	Registry string `json:"registry"`
	// Region is the region the rules were read in.
	Region string `json:"region,omitempty"`
	// SavedAt is when the rules were discovered.
	SavedAt time.Time `json:"savedAt"`
	// Rules are the account's rules as discovered.
	Rules []SavedRule `json:"rules"`
}

// SavedRule is one rule in the saved rule set.
type SavedRule struct {
	Prefix                   string `json:"ecrRepositoryPrefix"`
	UpstreamURL              string `json:"upstreamRegistryUrl"`
	UpstreamRegistry         string `json:"upstreamRegistry,omitempty"`
	UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix,omitempty"`
	CredentialARN            string `json:"credentialArn,omitempty"`
	CustomRoleARN            string `json:"customRoleArn,omitempty"`
}

func toSaved(registry, region string, rs []rewrite.Rule, now time.Time) Saved {
	s := Saved{Registry: registry, Region: region, SavedAt: now.UTC()}
	for _, r := range rs {
		s.Rules = append(s.Rules, SavedRule{r.Prefix, r.UpstreamURL, r.UpstreamRegistry, r.UpstreamRepositoryPrefix, r.CredentialARN, r.CustomRoleARN})
	}
	return s
}

func (s Saved) rules() []rewrite.Rule {
	var out []rewrite.Rule
	for _, r := range s.Rules {
		out = append(out, rewrite.Rule{Prefix: r.Prefix, UpstreamURL: r.UpstreamURL, UpstreamRegistry: r.UpstreamRegistry,
			UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix, CredentialARN: r.CredentialARN, CustomRoleARN: r.CustomRoleARN, Source: "saved"})
	}
	return out
}

// LoadSaved reads the saved rule set from dir. A missing file gives
// fs.ErrNotExist; an unreadable or corrupt one, an error naming the file.
func LoadSaved(dir string) (Saved, error) {
	p := filepath.Join(dir, StateFile)
	data, err := readState(p)
	if err != nil {
		return Saved{}, err
	}
	var s Saved
	if err := json.Unmarshal(data, &s); err != nil {
		return Saved{}, fmt.Errorf("saved rule set %q is corrupt (%w): it is replaced at the next successful discovery", p, err)
	}
	if s.Registry == "" {
		return Saved{}, fmt.Errorf("saved rule set %q names no registry: it is replaced at the next successful discovery", p)
	}
	return s, nil
}

// MaxStateSize is the largest saved rule set LoadSaved reads.
const MaxStateSize = 1 << 20

// Encode returns the bytes of the saved rule set for a file that holds
// old now: old itself when it holds the same rule set (a newer SavedAt
// alone is not a change), else s freshly encoded. Writing the result only
// when it differs from old keeps repeated discoveries from touching the
// file.
func (s Saved) Encode(old []byte) []byte {
	var prev Saved
	if len(old) > 0 && json.Unmarshal(old, &prev) == nil {
		prev.SavedAt = s.SavedAt
		a, _ := json.Marshal(prev)
		b, _ := json.Marshal(s)
		if bytes.Equal(a, b) {
			return old
		}
	}
	data, _ := json.MarshalIndent(s, "", "  ") // plain struct: cannot fail
	return append(data, '\n')
}

// save writes the rule set atomically, and only when it changed: a reader
// sees the old file or the new one, never a part.
func save(dir string, s Saved) error {
	p := filepath.Join(dir, StateFile)
	old, _ := readState(p) // nil when missing, unreadable or too large: replace it
	data := s.Encode(old)
	if old != nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.Write(p, data, 0o644, nil)
}

// readState reads the saved rule set at p, refusing one over MaxStateSize.
func readState(p string) ([]byte, error) {
	data, err := atomicfile.ReadCapped(p, MaxStateSize)
	if errors.Is(err, atomicfile.ErrTooLarge) {
		return nil, fmt.Errorf("saved rule set %q is larger than %d bytes: it is replaced at the next successful discovery", p, MaxStateSize)
	}
	return data, err
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
