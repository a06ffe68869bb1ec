package campaign

import (
	"fmt"
	"slices"
	"strings"

	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
)

// familyDeclarer is a target that says which families it takes (an exec
// worker's hello, families=…; nil: every family).
type familyDeclarer interface {
	Families() []problem.Family
}

// DefaultFamily is the family a campaign draws when none is named: ""
// (props' default mix of sparse and window) unless the targets declare
// families. Targets that all declare one and the same family get it, so
// a dense-only worker is sent dense cases rather than a run of skips. A
// declared set the default mix cannot cover (two families, not both in
// the mix) is an error asking for --family, not a guess.
func DefaultFamily(ts []targets.Target) (problem.Family, error) {
	var union []problem.Family
	for _, t := range ts {
		d, ok := t.Kernel.(familyDeclarer)
		if !ok || d.Families() == nil {
			return "", nil
		}
		for _, f := range d.Families() {
			if !slices.Contains(union, f) {
				union = append(union, f)
			}
		}
	}
	mix := []problem.Family{problem.Sparse, problem.Window}
	switch {
	case len(union) == 0:
		return "", nil
	case len(union) == 1:
		return union[0], nil
	case !slices.ContainsFunc(union, func(f problem.Family) bool { return !slices.Contains(mix, f) }):
		return "", nil
	}
	names := make([]string, len(union))
	for i, f := range union {
		names[i] = string(f)
	}
	return "", fmt.Errorf("the target declares families=%s, which the default mix (sparse and window) does not cover: name one with --family", strings.Join(names, ","))
}
