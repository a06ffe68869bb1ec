package targets

import (
	"github.com/attnvet/attnvet/impl/mutant"
)

// Mutants lists every mutant in the catalog as a target.
func Mutants() []Target {
	var out []Target
	for _, m := range mutant.All() {
		out = append(out, fromMutant(m))
	}
	return out
}

func lookupMutant(name string) (Target, error) {
	m, err := mutant.Lookup(name)
	if err != nil {
		return Target{}, err
	}
	return fromMutant(m), nil
}

func fromMutant(m mutant.Mutant) Target {
	return Target{Name: MutantPrefix + m.Name, Kind: Mutant, Kernel: m.Kernel, Shape: m.Shape, BugClass: m.BugClass, Doc: m.Doc, Family: string(m.Family)}
}
