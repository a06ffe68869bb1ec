// Package corpus holds the curated cases: one JSON Case per file, named for
// the edge it pins (sparse_k1_sink.json) and described in one line inside.
// go test replays every case against every correct emulation (and the
// metamorphic properties); attnvet gate and fuzz campaigns start from it,
// and the fuzz targets are seeded with it.
//
// A case that breaks the kernel contract (a *_violation.json file) is not
// judged numerically: replaying it must report the violation.
package corpus

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"

	"github.com/attnvet/attnvet/internal/cases"
)

//go:embed *.json
var files embed.FS

// Named is a corpus case with its file name.
type Named struct {
	Name string // file name, e.g. "sparse_k1_sink.json"
	Case cases.Case
}

// FS is the corpus as a file system of *.json files.
func FS() fs.FS { return files }

// Files lists the corpus file names, sorted.
func Files() ([]string, error) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// Load parses the corpus file name.
func Load(name string) (cases.Case, error) {
	b, err := fs.ReadFile(files, name)
	if err != nil {
		return cases.Case{}, err
	}
	c, err := cases.Parse(b)
	if err != nil {
		return cases.Case{}, fmt.Errorf("corpus/%s: %v", name, err)
	}
	return c, nil
}

// All parses every corpus case, sorted by name.
func All() ([]Named, error) {
	names, err := Files()
	if err != nil {
		return nil, err
	}
	out := make([]Named, 0, len(names))
	for _, n := range names {
		c, err := Load(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Named{Name: n, Case: c})
	}
	return out, nil
}
