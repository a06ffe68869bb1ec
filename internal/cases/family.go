package cases

import (
	"fmt"

	"github.com/attnvet/attnvet/internal/problem"
)

// family is one family's case knowledge: its shape rules, sizes and how
// its fields build the inputs. Each family's own file registers it
// (registerFamily), so Validate, Generate and the size accessors hold no
// switch on the family; a family without one is an error.
type family struct {
	validate func(c Case) error
	// elements counts the input tensors' elements (MemoryNeed, the limits).
	elements func(c Case) int
	tokens   func(c Case) int // T
	hkv      func(c Case) int // KV heads
	dv       func(c Case) int // the value width
	// noQ: the family has no query (combine).
	noQ bool
	// generate builds the family's tensors into in (q is drawn before).
	generate func(c Case, in *problem.Inputs, r *rng, vg *valueGen) error
	// specials: kvSpecial names the sparse family's tensor kv (keys by
	// index position), which it takes instead of k and v; specialKeys is
	// the key count k and v specials index.
	kvSpecial   bool
	specialKeys func(c Case) int

	// The printout (internal/show): shape is the family's part of the
	// case's one-line shape; rowNote says where row t's keys come from
	// ("" if nothing); keySources names each of its n reference keys.
	shape      func(c Case) string
	rowNote    func(in *problem.Inputs, t int) string
	keySources func(in *problem.Inputs, t, n int) []string
}

var families = map[problem.Family]*family{}

// registerFamily records the case knowledge of fams (from the family's file).
func registerFamily(f *family, fams ...problem.Family) bool {
	for _, fam := range fams {
		if families[fam] != nil {
			panic(fmt.Sprintf("cases: family %s registered twice", fam))
		}
		families[fam] = f
	}
	return true
}

// lookup is fam's case knowledge; an unknown family is an error.
func lookup(fam problem.Family) (*family, error) {
	if f := families[fam]; f != nil {
		return f, nil
	}
	return nil, fmt.Errorf("family %q: want %s", fam, problem.FamilyNames())
}

// fam is c's family knowledge, for the accessors of a validated case
// (Validate rejects an unknown family): a miss is a programming error.
func (c Case) fam() *family {
	f, err := lookup(c.Family)
	if err != nil {
		panic("cases: " + err.Error())
	}
	return f
}

// Accessors the families share.
func oneKV(Case) int { return 1 }
func hkvOrH(c Case) int {
	if c.Hkv == 0 {
		return c.H
	}
	return c.Hkv
}
func dvIsD(c Case) int { return c.D }
func dvOrD(c Case) int {
	if c.Dv == 0 {
		return c.D
	}
	return c.Dv
}
func batchTokens(c Case) int { return c.B * c.tokensPerBatch() }
func caseT(c Case) int       { return c.T }

// ShapeFields is the family's part of c's one-line shape (" b=1 s=2 …").
func ShapeFields(c Case) string { return c.fam().shape(c) }

// RowNote says where the keys of row t of in come from (" (batch 0, …)"),
// "" where the family says nothing.
func RowNote(in *problem.Inputs, t int) string { return Case{Family: in.Family}.fam().rowNote(in, t) }

// KeySources names where each of the n reference keys of token t comes
// from: the index-row entry (sparse), the key position (window, dense),
// else its rank in the reference's key order.
func KeySources(in *problem.Inputs, t, n int) []string {
	return Case{Family: in.Family}.fam().keySources(in, t, n)
}

// tWindowShape is the shape of a case of t tokens and window W (the
// families whose case fields are t, window: window, and the printout of
// combine and mla).
func tWindowShape(c Case) string { return fmt.Sprintf(" t=%d window=%d", c.T, c.Window) }

func noRowNote(*problem.Inputs, int) string { return "" }

// rankedKeys names keys by their rank in the reference order (keys
// gathered through index lists the families describe, docs/kernels.md).
func rankedKeys(_ *problem.Inputs, _, n int) []string {
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("#%d", i))
	}
	return out
}

// positionKeys names keys by their position, from lo.
func positionKeys(lo, n int) []string {
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("#%d position %d", i, lo+i))
	}
	return out
}
