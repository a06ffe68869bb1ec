package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/attnvet/attnvet/internal/atomicfile"
	"github.com/attnvet/attnvet/internal/jsonout"
)

// Merge combines reports of disjoint shards of one run (same version,
// seed, case count, shard count, families, kernels and mutants) into the
// report of their union: counts and histograms add, maxima and needed
// atols take the maximum, points concatenate in case order. Merging every
// shard of a run gives exactly the unsharded report.
func Merge(rs ...*Report) (*Report, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("nothing to merge")
	}
	// Deep copy the first so the inputs are left alone.
	out, err := clone(rs[0])
	if err != nil {
		return nil, err
	}
	seen := map[int]int{}
	for _, id := range out.ShardIDs {
		seen[id] = 0
	}
	for k, r := range rs[1:] {
		k++
		if err := compatible(out, r); err != nil {
			return nil, fmt.Errorf("report %d: %v", k+1, err)
		}
		for _, id := range r.ShardIDs {
			if j, dup := seen[id]; dup {
				return nil, fmt.Errorf("reports %d and %d both cover shard %d/%d", j+1, k+1, id, r.Shards)
			}
			seen[id] = k
		}
		if err := out.add(r); err != nil {
			return nil, err
		}
		out.ShardIDs = append(out.ShardIDs, r.ShardIDs...)
	}
	sort.Ints(out.ShardIDs)
	out.sortPoints()
	return out, nil
}

func clone(r *Report) (*Report, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

func compatible(a, b *Report) error {
	switch {
	case a.Version != b.Version:
		return fmt.Errorf("version %d, want %d", b.Version, a.Version)
	case a.Seed != b.Seed:
		return fmt.Errorf("seed %d, want %d (shards of one run share the seed)", b.Seed, a.Seed)
	case a.Cases != b.Cases:
		return fmt.Errorf("%d cases, want %d", b.Cases, a.Cases)
	case a.Shards != b.Shards:
		return fmt.Errorf("%d shards, want %d", b.Shards, a.Shards)
	case a.SubBins != b.SubBins:
		return fmt.Errorf("%d histogram bins per octave, want %d", b.SubBins, a.SubBins)
	case !slices.Equal(a.Families, b.Families):
		return fmt.Errorf("families %v, want %v", b.Families, a.Families)
	case !slices.Equal(a.Kernels, b.Kernels):
		return fmt.Errorf("a different kernel selection (%d kernels, want %d)", len(b.Kernels), len(a.Kernels))
	case !slices.Equal(a.RTols, b.RTols):
		return fmt.Errorf("a different rtol grid")
	case len(a.Entries) != len(b.Entries):
		return fmt.Errorf("%d entries, want %d", len(b.Entries), len(a.Entries))
	case len(a.Mutants) != len(b.Mutants):
		return fmt.Errorf("%d mutants, want %d", len(b.Mutants), len(a.Mutants))
	}
	for _, id := range b.ShardIDs {
		if id < 0 || id >= b.Shards {
			return fmt.Errorf("shard %d outside 0..%d", id, b.Shards-1)
		}
	}
	return nil
}

// Complete reports whether r covers every shard of its run.
func (r *Report) Complete() bool { return len(r.ShardIDs) == r.Shards }

// Parse decodes a report.json and checks its structure.
func Parse(b []byte) (*Report, error) {
	var r Report
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("bad report JSON: %v", err)
	}
	if r.Version < 1 || r.Version > Version {
		return nil, fmt.Errorf("report version %d: this attnvet reads version %d", r.Version, Version)
	}
	if r.SubBins != SubBins {
		return nil, fmt.Errorf("report has %d histogram bins per octave, this attnvet uses %d", r.SubBins, SubBins)
	}
	if r.Shards < 1 || len(r.ShardIDs) == 0 {
		return nil, fmt.Errorf("report names no shard")
	}
	if len(r.Entries) != len(r.Kernels)*len(r.Families) {
		return nil, fmt.Errorf("report has %d entries for %d kernels × %d families", len(r.Entries), len(r.Kernels), len(r.Families))
	}
	for i, e := range r.Entries {
		if e == nil || e.Kernel != r.Kernels[i/len(r.Families)] || e.Family != r.Families[i%len(r.Families)] {
			return nil, fmt.Errorf("report entry %d is not kernel %s, family %s", i, r.Kernels[i/len(r.Families)], r.Families[i%len(r.Families)])
		}
		if len(e.Need) != len(r.RTols) || len(e.NeedTypical) != len(r.RTols) {
			return nil, fmt.Errorf("report entry %d: %d needed atols for %d rtols", i, len(e.Need), len(r.RTols))
		}
		if e.Criteria == nil {
			e.Criteria = map[string]*Crit{}
		}
	}
	for i, m := range r.Mutants {
		if m == nil || len(m.Need) != len(r.RTols) || len(m.NeedTypical) != len(r.RTols) {
			return nil, fmt.Errorf("report mutant %d: needed atols do not match the rtol grid", i)
		}
		if m.Criteria == nil {
			m.Criteria = map[string]*Crit{}
		}
	}
	return &r, nil
}

// Load reads a report.json.
func Load(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return r, nil
}

// JSON is the report.json encoding of r: one top-level field per line,
// one entry or mutant per line.
func (r *Report) JSON() []byte {
	b, err := jsonout.Marshal(r)
	if err != nil {
		panic("report: " + err.Error()) // every field is marshalable
	}
	return append(indentShallow(b, 2), '\n')
}

// indentShallow breaks compact JSON b into lines at the commas and
// brackets of its first depth levels, leaving deeper values on one line.
func indentShallow(b []byte, depth int) []byte {
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/64)
	d, inStr, esc := 0, false, false
	nl := func(level int) {
		out.WriteByte('\n')
		out.Write(bytes.Repeat([]byte(" "), level))
	}
	for i, c := range b {
		if inStr {
			out.WriteByte(c)
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
			out.WriteByte(c)
		case '{', '[':
			d++
			out.WriteByte(c)
			if d <= depth && i+1 < len(b) && b[i+1] != '}' && b[i+1] != ']' {
				nl(d)
			}
		case '}', ']':
			if d <= depth && i > 0 && b[i-1] != '{' && b[i-1] != '[' {
				nl(d - 1)
			}
			d--
			out.WriteByte(c)
		case ',':
			out.WriteByte(c)
			if d <= depth {
				nl(d)
			}
		case ':':
			out.WriteByte(c)
			if d <= depth {
				out.WriteByte(' ')
			}
		default:
			out.WriteByte(c)
		}
	}
	return out.Bytes()
}

// Files names the files a report writes.
const (
	FileJSON     = "report.json"
	FileMarkdown = "report.md"
	FileHTML     = "report.html"
)

// Write writes report.json and, unless jsonOnly, report.md and
// report.html into dir (created if needed), each atomically: to a
// temporary file in dir, then renamed. It returns the paths written.
func Write(dir string, r *Report, jsonOnly bool) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	type file struct {
		name string
		data func() ([]byte, error)
	}
	files := []file{{FileJSON, func() ([]byte, error) { return r.JSON(), nil }}}
	if !jsonOnly {
		files = append(files,
			file{FileMarkdown, func() ([]byte, error) { return Markdown(r), nil }},
			file{FileHTML, func() ([]byte, error) { return HTML(r) }})
	}
	var paths []string
	for _, f := range files {
		b, err := f.data()
		if err != nil {
			return paths, fmt.Errorf("%s: %v", f.name, err)
		}
		p := filepath.Join(dir, f.name)
		if err := atomicfile.Write(p, b); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
