package problem

import (
	"fmt"
	"sort"
)

// spec is one family's problem semantics: which keys each query sees (the
// reference's and the device's reading), what well-formed inputs are, and
// which contract violations it has. Each family's own file registers its
// spec (register), so Families, RefKeys, KernelKeys, Check, Violations
// and KeySources hold no switch on the family; an unknown family is an
// error (Check, ParseFamily).
type spec struct {
	// rank is the family's place in Families() (the order of listings,
	// messages and per-family runs).
	rank       int
	refKeys    func(in *Inputs, t, g int, dst []Key) []Key
	kernelKeys func(in *Inputs, t, g int, dst []Key) []Key
	// checkAll, when set, is the family's whole Check (combine: no query,
	// so none of the shared checks apply); else check runs after them.
	checkAll func(in *Inputs) error
	check    func(in *Inputs) error
	// violations adds the family's own contract violations.
	violations func(in *Inputs, add func(string, int, string, ...any))
	// keySources: KeySources' fixed key tensors (nil: not a fixed set);
	// sharedKV: the V views are the K views.
	keySources func(in *Inputs) (ks, vs [][]float32)
	sharedKV   bool
	// keysPerToken is a rough count of keys per token (KeysPerToken).
	keysPerToken func(in *Inputs) int
	// distinctKeys: a row's keys are distinct positions, never one entry
	// repeated (KeysDistinct).
	distinctKeys bool
}

var specs = map[Family]*spec{}

// register records fam's semantics (from the family's own file).
func register(fam Family, s *spec) bool {
	if specs[fam] != nil {
		panic(fmt.Sprintf("problem: family %s registered twice", fam))
	}
	for f, o := range specs {
		if o.rank == s.rank {
			panic(fmt.Sprintf("problem: families %s and %s share rank %d", f, fam, s.rank))
		}
	}
	specs[fam] = s
	return true
}

// specOf is the spec of in's family, for inputs that passed Check (which
// rejects an unknown family): a miss is a programming error.
func (in *Inputs) spec() *spec {
	s := specs[in.Family]
	if s == nil {
		panic(fmt.Sprintf("problem: unknown family %q (want %s)", in.Family, FamilyNames()))
	}
	return s
}

// Families lists every family, in a fixed order (each family's rank).
func Families() []Family {
	fs := make([]Family, 0, len(specs))
	for f := range specs {
		fs = append(fs, f)
	}
	sort.Slice(fs, func(i, j int) bool { return specs[fs[i]].rank < specs[fs[j]].rank })
	return fs
}

// KeysPerToken is a rough count of the keys a token attends (the
// reference's parallelism decision).
func (in *Inputs) KeysPerToken() int { return in.spec().keysPerToken(in) }

// positionalKeys is the key count of the families whose token t attends
// positions of one sequence: the window W, else every token.
func positionalKeys(in *Inputs) int {
	if in.W > 0 {
		return min(in.W, in.T)
	}
	return in.T
}

// KeysDistinct reports whether a row's keys are always distinct (key
// positions, states), so that no row can repeat one key as index entries
// may (tolerance's repeated rows).
func (in *Inputs) KeysDistinct() bool { return in.spec().distinctKeys }
