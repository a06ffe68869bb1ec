package impl_test

import (
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/cputime"
	"github.com/attnvet/attnvet/internal/problem"
)

// The shapes of ref's benchmarks (ref/bench_test.go).
var smallCase = cases.Case{Family: problem.Sparse, Seed: 1, H: 4, D: 32, B: 1, S: 1,
	Win: 32, IdxTopK: 0, Seqused: []int{32}, Sink: &cases.Sink{Kind: "random", Scale: 1}}

func decodeCase() cases.Case {
	c := cases.Case{Family: problem.Sparse, Seed: 1, H: 64, D: 512, B: 64, S: 1, Win: 128, IdxTopK: 512,
		BlockSize: 128, Indices: "shuffled", Sink: &cases.Sink{Kind: "random", Scale: 1}}
	for range c.B {
		c.Seqused = append(c.Seqused, 1024)
	}
	return c
}

func benchEmu(b *testing.B, name string, c cases.Case) {
	e, err := impl.Lookup(name)
	if err != nil {
		b.Fatal(err)
	}
	in := gen(b, c, e.Profile().In)
	c0 := cputime.Process()
	for b.Loop() {
		if _, err := e.Run(in); err != nil {
			b.Fatal(err)
		}
	}
	if c := cputime.Process() - c0; c > 0 {
		b.ReportMetric(float64(c.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(in.T*in.H), "ns/row")
}

func BenchmarkEmuSmall(b *testing.B)  { benchEmu(b, "tiled/bc32/bf16", smallCase) }
func BenchmarkEmuDecode(b *testing.B) { benchEmu(b, "tiled/bc128/bf16", decodeCase()) }
