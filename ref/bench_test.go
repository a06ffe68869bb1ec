package ref_test

import (
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/cputime"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/ref"
)

// smallCase is a fuzz-size problem: one token, H = 4, D = 32, n = 32 keys
// (sparse family, 32 window slots, no compressed slots).
var smallCase = cases.Case{Family: problem.Sparse, Seed: 1, H: 4, D: 32, B: 1, S: 1,
	Win: 32, IdxTopK: 0, Seqused: []int{32}, Sink: &cases.Sink{Kind: "random", Scale: 1}}

// decodeCase is the production decode shape of SPEC.md §1: T = 64 tokens
// (B = 64, S = 1), H = 64, D = 512, WIN = 128, IDX_TOPK = 512, block size
// 128, every token at u = 1024 so sparse_k = 128 + 512 = 640.
func decodeCase() cases.Case {
	c := cases.Case{Family: problem.Sparse, Seed: 1, H: 64, D: 512, B: 64, S: 1, Win: 128, IdxTopK: 512,
		BlockSize: 128, Indices: "shuffled", Sink: &cases.Sink{Kind: "random", Scale: 1}}
	for range c.B {
		c.Seqused = append(c.Seqused, 1024)
	}
	return c
}

func benchRef(b *testing.B, c cases.Case, opt ref.Options) { benchRefInto(b, c, opt, false) }

// benchRefInto is benchRef; with reuse each Compute writes into the last
// one's memory (ComputeInto), as a campaign does (pipeline.Case.Release).
func benchRefInto(b *testing.B, c cases.Case, opt ref.Options, reuse bool) {
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		b.Fatal(err)
	}
	for t := 0; t < in.T; t++ {
		if k := in.TokenLens(t).SparseK; k != c.Win+c.IdxTopK {
			b.Fatalf("token %d: sparse_k = %d, want %d", t, k, c.Win+c.IdxTopK)
		}
	}
	c0 := cputime.Process()
	var r *ref.Result
	for b.Loop() {
		if !reuse {
			r = nil
		}
		r = ref.ComputeInto(in, opt, r)
	}
	if c := cputime.Process() - c0; c > 0 {
		b.ReportMetric(float64(c.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(in.T*in.H), "ns/row")
}

func BenchmarkRefSmall(b *testing.B)  { benchRef(b, smallCase, ref.Options{}) }
func BenchmarkRefDecode(b *testing.B) { benchRef(b, decodeCase(), ref.Options{}) }

// BenchmarkRefDecodeSerial is the decode shape on one core.
func BenchmarkRefDecodeSerial(b *testing.B) { benchRef(b, decodeCase(), ref.Options{Workers: 1}) }

// BenchmarkRefSmallLazy is BenchmarkRefSmall without the deviation sums
// (Options.LazyDev: what a judgement that needs none of them pays).
func BenchmarkRefSmallLazy(b *testing.B) { benchRef(b, smallCase, ref.Options{LazyDev: true}) }

// BenchmarkRefSmallFuzz is the fuzz-size reference as a campaign computes
// it: one goroutine, no deviation sums until a judgement asks, into the
// previous case's memory.
func BenchmarkRefSmallFuzz(b *testing.B) {
	benchRefInto(b, smallCase, ref.Options{Workers: 1, LazyDev: true}, true)
}

// BenchmarkRefDecodeSerialLazy is BenchmarkRefDecodeSerial with LazyDev.
func BenchmarkRefDecodeSerialLazy(b *testing.B) {
	benchRef(b, decodeCase(), ref.Options{Workers: 1, LazyDev: true})
}
