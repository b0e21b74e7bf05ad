package warm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// InputError is an error in what the command was asked to read: a file
// that does not exist, standard input named twice, a directory with
// nothing to read. The command reports it as a usage error.
type InputError struct{ Err error }

func (e InputError) Error() string { return e.Err.Error() }
func (e InputError) Unwrap() error { return e.Err }

// ReadInputs collects the image references of every file, directory
// (read recursively, see FilesIn) and argument, in order. A file named
// "-" is stdin, which can be read once.
func ReadInputs(stdin io.Reader, files, args []string) ([]Found, error) {
	var found []Found
	stdinRead := false
	for _, name := range files {
		var refs []Found
		var err error
		if name == "-" {
			if stdinRead {
				return nil, InputError{errors.New("-f - is given twice: standard input can be read once")}
			}
			stdinRead = true
			refs, err = readStdin(stdin)
		} else {
			refs, err = readPath(name)
		}
		if err != nil {
			return nil, err
		}
		found = append(found, refs...)
	}
	for _, ref := range args {
		found = append(found, Found{Ref: ref, Source: "argument"})
	}
	return found, nil
}

// readStdin collects the references on standard input.
func readStdin(stdin io.Reader) ([]Found, error) {
	src, err := io.ReadAll(stdin)
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	return Collect("-", src)
}

// readPath collects the references of a file, or of the files under a
// directory.
func readPath(name string) ([]Found, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, InputError{fmt.Errorf("-f %s: %w", name, err)}
	}
	paths := []string{name}
	if fi.IsDir() {
		if paths, err = FilesIn(name); err != nil {
			return nil, err
		}
		if len(paths) == 0 {
			return nil, InputError{fmt.Errorf("-f %s: the directory holds no *.yaml, *.yml, *.json, Dockerfile, Containerfile, *.txt or *.list file", name)}
		}
	}
	var found []Found
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		refs, err := Collect(p, src)
		if err != nil {
			return nil, err
		}
		found = append(found, refs...)
	}
	return found, nil
}

// FilesIn lists the files under dir that may name images, sorted,
// skipping hidden directories such as .git.
//
// Its file-name rules copy those of rewrite.DetectFormat; moved here as
// they were in the command.
func FilesIn(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if IsInput(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	return out, nil
}
