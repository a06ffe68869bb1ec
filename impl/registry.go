package impl

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"sync"

	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/profile"
)

// Hooks are the points where a mutant (impl/mutant) alters an emulation.
// Every hook is nil in a correct kernel.
type Hooks struct {
	// Keys replaces the key list the kernel gathered for token t, KV head g.
	Keys func(in *problem.Inputs, t, g int, keys []problem.Key) []problem.Key
	// Row alters one head's FP32 result before the output cast.
	Row func(in *problem.Inputs, t, h int, keys []problem.Key, pre []float32)
	// Head replaces the key list of query head h of token t (after Keys;
	// Row then sees the replaced list).
	Head func(in *problem.Inputs, t, h int, keys []problem.Key) []problem.Key
	// State alters a row's final (m, l, o) before the sink step and the
	// division. It is called for rows with at least one key.
	State func(in *problem.Inputs, t, h int, keys []problem.Key, m, l *float32, o []float32)
	// Merge replaces the merge of a tile's (mt, lt, ot) into the running
	// (m, l, o) in the tiled and splitkv kernels: it updates o in place and
	// returns the new (m, l).
	Merge func(m, l float32, o []float32, mt, lt float32, ot []float32) (float32, float32)
	// P replaces a tile lane's p = exp(s − mt) in the tiled and splitkv
	// kernels, before P's rounding to the profile's P format.
	P func(s, mt float32) float32
	// Score replaces the modifier stage of a key's score (dense): from the
	// scaled score x (accumulator-rounded) to the modified score, before
	// the score storage rounding. Called only where a modifier is active.
	Score func(x, softcap, slope float32, k problem.Key) float32
	// Out alters the finished output (o, Pre and LSE) of the whole problem.
	Out func(in *problem.Inputs, out *Output)
	// MaskBias, when nonzero, replaces the bias of masked lanes (MaskBias
	// or −Inf) in the tiled and splitkv kernels.
	MaskBias float32
}

// Shapes of the built-in emulations (per profile).
var shapes = []Config{
	{Kind: Stream},
	{Kind: Tiled, Bc: 16},
	{Kind: Tiled, Bc: 32},
	{Kind: Tiled, Bc: 64},
	{Kind: Tiled, Bc: 128},
	{Kind: Tiled, Bc: 32, MaskInf: true},
	{Kind: SplitKV, Bc: 32, Parts: 2},
	{Kind: SplitKV, Bc: 16, Parts: 4},
}

// registry is built once: the mutants look up their base kernel by name,
// and building the list each time (about 80 names, sorted by formatted
// name) cost 1.5 CPU-s of a campaign package's tests.
var registry = sync.OnceValue(func() (r struct {
	configs []Config
	byName  map[string]int
}) {
	var cs []Config
	for _, pn := range profile.Names() {
		for _, sh := range shapes {
			c := sh
			c.Profile = profile.MustLookup(pn)
			cs = append(cs, c)
		}
	}
	cs = append(cs, pyptoConfigs()...)
	cs = append(cs, fa3Configs()...)
	cs = append(cs, exp2Configs()...)
	cs = append(cs, lazyConfigs()...)
	names := make(map[Config]string, len(cs))
	for _, c := range cs {
		names[c] = ConfigName(c)
	}
	sort.Slice(cs, func(i, j int) bool { return names[cs[i]] < names[cs[j]] })
	r.configs, r.byName = cs, make(map[string]int, len(cs))
	for i, c := range cs {
		r.byName[names[c]] = i
	}
	return r
})

// Configs lists every correct emulation configuration, sorted by name (a
// fresh slice: the caller may change it).
func Configs() []Config { return slices.Clone(registry().configs) }

// Names lists the registry names of the correct emulations.
func Names() []string {
	var ns []string
	for _, c := range Configs() {
		ns = append(ns, ConfigName(c))
	}
	return ns
}

// Lookup returns the correct emulation with registry name name.
func Lookup(name string) (*Emulation, error) {
	r := registry()
	if i, ok := r.byName[name]; ok {
		return New(r.configs[i]), nil
	}
	return nil, fmt.Errorf("unknown kernel %q (see 'attnvet kernels')", name)
}

// Match returns the correct emulations whose names match a path.Match glob
// ("tiled/*/bf16", "*/*/bf16", "stream/*"); "all" or "" selects all.
func Match(glob string) ([]*Emulation, error) {
	var es []*Emulation
	for _, c := range Configs() {
		n := ConfigName(c)
		ok := glob == "" || glob == "all"
		if !ok {
			var err error
			ok, err = path.Match(glob, n)
			if err != nil {
				return nil, fmt.Errorf("bad kernel pattern %q: %v", glob, err)
			}
		}
		if ok {
			es = append(es, New(c))
		}
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("no kernel matches %q (see 'attnvet kernels')", glob)
	}
	return es, nil
}
