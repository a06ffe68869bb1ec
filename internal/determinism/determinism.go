// Package determinism pins the bits of the float64 reference and of every
// registry emulation on a fixed list of cases, so that a build which
// computes differently fails loudly. Go may fuse a*b+c into one FMA on arm64
// and on amd64 with GOAMD64=v3; attnvet's arithmetic is written so that it
// never does (explicit conversions round every product), and its exp is
// portable (num.Exp). This package is how that claim is checked:
// scripts/crossarch.sh runs its test under qemu-aarch64 and with
// GOAMD64=v3 against the hashes recorded on amd64.
//
// Each line of the golden file is "case/what sha256": the case's generated
// inputs per storage format, the reference's output and magnitudes per
// input format, and each compatible emulation's output (O and Pre). Floats
// are hashed as their IEEE bits, little-endian, in order, except that every
// NaN hashes as one canonical NaN: Go leaves NaN signs and payloads to the
// hardware (amd64's default NaN is negative, arm64's positive) and to the
// compiler's operand order, and no result of attnvet depends on them.
package determinism

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/pipeline"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/ref"
)

// NamedCase is a case of the fixed list.
type NamedCase struct {
	Name string
	Case cases.Case
}

func sparse(seed uint64, h, d, b, s, win, topk, bs int, seqused ...int) cases.Case {
	return cases.Case{Family: problem.Sparse, Seed: seed, H: h, D: d, B: b, S: s, Win: win, IdxTopK: topk,
		BlockSize: bs, Seqused: seqused, Sink: &cases.Sink{Kind: "random", Scale: 2}}
}

func window(seed uint64, t, h, hkv, d, dv, w int) cases.Case {
	return cases.Case{Family: problem.Window, Seed: seed, T: t, H: h, Hkv: hkv, D: d, Dv: dv, Window: w,
		Sink: &cases.Sink{Kind: "random", Scale: 2}}
}

func with(c cases.Case, f func(c *cases.Case)) cases.Case { f(&c); return c }

// Cases is the fixed list: both families, n = 0, 1, 2 and tile edges, S = 2,
// sinks of ±Inf and huge, wide and extreme values, NaN from contract
// violations, fp16 and fp32 storage.
func Cases() []NamedCase {
	inf, ninf := cases.F(math.Inf(1)), cases.F(math.Inf(-1))
	return []NamedCase{
		{"sparse_basic", sparse(1, 4, 16, 2, 1, 8, 24, 4, 20, 40)},
		{"sparse_s2_shuffled", with(sparse(2, 5, 8, 3, 2, 6, 12, 3, 5, 9, 30), func(c *cases.Case) {
			c.Indices, c.BlockTable, c.Plant = "shuffled", "permuted", []string{"duplicate"}
		})},
		{"sparse_n012", sparse(3, 3, 4, 3, 1, 4, 4, 2, 0, 1, 2)},
		{"sparse_s2_n0", sparse(4, 2, 4, 2, 2, 4, 4, 2, 1, 2)},
		{"sparse_tile_edges", sparse(5, 2, 8, 12, 1, 16, 128, 16, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129)},
		{"sparse_sink_posinf", with(sparse(6, 3, 8, 2, 1, 4, 8, 4, 3, 12), func(c *cases.Case) {
			c.Sink = &cases.Sink{Kind: "const", Value: inf}
		})},
		{"sparse_sink_mixed", with(sparse(7, 4, 8, 2, 2, 4, 8, 4, 3, 12), func(c *cases.Case) {
			c.Sink = &cases.Sink{Kind: "const", Values: []cases.Float{inf, ninf, cases.F(0), {Name: "-max"}}}
		})},
		{"sparse_wide", with(sparse(8, 4, 16, 2, 1, 8, 40, 8, 30, 48), func(c *cases.Case) {
			c.Values = cases.Values{Dist: "wide", WideExp: 20}
		})},
		{"sparse_fp16", with(sparse(9, 4, 16, 2, 1, 8, 24, 4, 20, 40), func(c *cases.Case) { c.DType = "fp16" })},
		{"sparse_fp32_dominant", with(sparse(10, 4, 16, 2, 1, 8, 24, 4, 20, 40), func(c *cases.Case) {
			c.DType, c.Values = "fp32", cases.Values{Dist: "dominant"}
		})},
		{"sparse_zeroq", with(sparse(11, 2, 8, 1, 1, 8, 8, 4, 16), func(c *cases.Case) { c.Values.Dist = "zeroq" })},
		{"sparse_pad_poison", with(sparse(12, 2, 8, 2, 1, 4, 8, 4, 10, 12), func(c *cases.Case) {
			c.Plant, c.Poison = []string{problem.VPadInPrefix}, true
		})},
		{"sparse_block_table_oob", with(sparse(13, 2, 8, 2, 1, 4, 8, 4, 10, 12), func(c *cases.Case) {
			c.Plant = []string{problem.VBlockTable}
		})},
		{"window_basic", window(14, 9, 4, 2, 8, 6, 4)},
		{"window_causal_long", window(15, 140, 2, 1, 16, 16, 0)},
		{"window_gqa_sink_neginf", with(window(16, 20, 6, 2, 8, 4, 17), func(c *cases.Case) {
			c.Sink = &cases.Sink{Kind: "const", Value: ninf}
		})},
		{"window_sink_huge", with(window(17, 6, 2, 1, 4, 4, 0), func(c *cases.Case) {
			c.Sink = &cases.Sink{Kind: "const", Values: []cases.Float{cases.F(1e30), cases.F(-1e30)}}
		})},
		{"window_d1", window(18, 12, 3, 1, 1, 1, 5)},
		{"window_specials", with(window(19, 5, 2, 2, 4, 3, 0), func(c *cases.Case) {
			c.Specials = []cases.Special{
				{Tensor: "q", Token: 4, Head: 0, Dim: 1, Value: cases.Float{Name: "max"}},
				{Tensor: "k", Key: 2, Head: 1, Dim: 0, Value: cases.Float{Name: "-minsub"}},
				{Tensor: "v", Key: 1, Head: 0, Dim: 2, Value: ninf},
				{Tensor: "q", Token: 3, Head: 1, Dim: 3, Value: cases.F(math.Copysign(0, -1))},
			}
		})},
		{"window_fp16_large", with(window(20, 40, 2, 1, 32, 8, 0), func(c *cases.Case) {
			c.DType, c.Values = "fp16", cases.Values{Scale: 6, VScale: 1000} // scores and sums overflow FP16
		})},
		{"window_uniform_fp32", with(window(21, 33, 4, 4, 16, 16, 32), func(c *cases.Case) {
			c.DType, c.Values = "fp32", cases.Values{Dist: "uniform", Scale: 3}
		})},
		// The later families: modifiers (tanh), lse (log), biases, paged indices.
		{"dense_softcap_alibi", cases.Case{Family: problem.Dense, Seed: 22, H: 4, Hkv: 2, D: 16, Dv: 8,
			Sq: []int{5, 1, 9}, Sk: []int{7, 40, 9}, Causal: true, WindowLeft: intp(6), Softcap: 5,
			Alibi: &cases.Alibi{Kind: "geometric", Scale: 4}, Sink: &cases.Sink{Kind: "random", Scale: 2},
			LSE: &cases.LSESpec{Base: "e", Empty: "+inf", Sink: "excluded"}, Values: cases.Values{Scale: 3}}},
		{"dense_empty_rows_lse2", cases.Case{Family: problem.Dense, Seed: 23, H: 3, D: 8, Sq: []int{6, 2}, Sk: []int{3, 0},
			Causal: true, Sink: &cases.Sink{Kind: "const", Values: []cases.Float{inf, ninf, cases.F(1.5)}},
			LSE: &cases.LSESpec{Base: "2", Empty: "-inf", Sink: "included"}}},
		{"combine_empties", cases.Case{Family: problem.Combine, Seed: 24, T: 5, H: 3, D: 12, States: 9, Empty: 0.3,
			LSE: &cases.LSESpec{Base: "2", Empty: "-inf"}, Values: cases.Values{Scale: 20}}},
		{"mla_scopes", cases.Case{Family: problem.MLA, Seed: 25, B: 2, S: 2, H: 5, D: 24, Dv: 16, TopK: 40, TopkLength: []int{17, 40},
			ExtraTopK: 8, Invalid: 0.2, BlockSize: 7, Poison: true, Sink: &cases.Sink{Kind: "const", Values: []cases.Float{inf, ninf, cases.F(0), cases.F(2), cases.F(-2)}},
			LSE: &cases.LSESpec{Base: "e", Empty: "+inf", Sink: "excluded"}}},
		// pypto's decode families: windows of physical rows with p = 0 and
		// short histories, the compressed bound edges, 128-column blocks
		// (win 128: the compressed columns start block 1), ±inf sinks.
		{"csa_bound_blocks", cases.Case{Family: problem.CSA, Seed: 26, B: 2, S: 2, H: 5, D: 24, Win: 128, IdxTopK: 40, IdxWidth: 44,
			Ratio: 2, BlockSize: 16, CmpBlockSize: 5, BlockTable: "permuted", Invalid: 0.2, Poison: true,
			Plant: []string{"bound_edge", "duplicate", "row0_nonfinite"}, Sink: &cases.Sink{Kind: "const", Values: []cases.Float{inf, ninf, cases.F(0), cases.F(2), cases.F(-2)}}}},
		{"hca_short", cases.Case{Family: problem.HCA, Seed: 27, B: 3, S: 1, H: 3, D: 16, Win: 16, IdxTopK: 12, Ratio: 3,
			BlockSize: 3, CmpBlockSize: 2, Invalid: 0.3, Positions: []int{0, 5, 40}, Sink: &cases.Sink{Kind: "random", Scale: 2}}},
		{"swa_lens", cases.Case{Family: problem.SWA, Seed: 28, B: 2, S: 2, H: 4, D: 8, Win: 24, BlockSize: 5,
			BlockTable: "permuted", Poison: true, Plant: []string{"short_lens"}, Sink: &cases.Sink{Kind: "random", Scale: 1}}},
	}
}

func intp(v int) *int { return &v }

// Line is one golden entry.
type Line struct {
	Key, Hash string
}

// Compute runs every case through the generator, the reference and every
// compatible emulation, and returns the hashes sorted by key.
func Compute() ([]Line, error) {
	var lines []Line
	add := func(key string, h hash.Hash) { lines = append(lines, Line{key, hex.EncodeToString(h.Sum(nil))}) }
	var kernels []*impl.Emulation
	for _, n := range impl.Names() {
		e, err := impl.Lookup(n)
		if err != nil {
			return nil, err
		}
		kernels = append(kernels, e)
	}
	for _, nc := range Cases() {
		inputs := map[num.Format]*problem.Inputs{}
		for _, e := range kernels {
			f := nc.Case.Format(e.Profile().In)
			in := inputs[f]
			if in == nil {
				var err error
				// Built, not prepared: the hashes cover the reference and the
				// emulations on violating inputs too (sparse_pad_poison).
				if in, err = pipeline.Build(nc.Case, f); err != nil {
					return nil, fmt.Errorf("%s: %v", nc.Name, err)
				}
				inputs[f] = in
				add(nc.Name+"/inputs/"+f.String(), hashInputs(in))
				r, err := pipeline.Reference(in, ref.Options{})
				if err != nil {
					return nil, fmt.Errorf("%s: %v", nc.Name, err)
				}
				add(nc.Name+"/ref/"+f.String(), hashRef(r))
				if in.LSE != nil {
					h := sha256.New()
					for i := range r.Rows {
						f64s(h, r.Rows[i].LSE)
					}
					add(nc.Name+"/ref-lse/"+f.String(), h)
				}
			}
			if !impl.Compatible(in.Format, e.Profile()) {
				continue
			}
			out, err := pipeline.Run(e, in, false)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %v", nc.Name, e.Name(), err)
			}
			h := sha256.New()
			f32s(h, out.O)
			f32s(h, out.Pre)
			if out.LSE != nil {
				f32s(h, out.LSE)
			}
			add(nc.Name+"/"+e.Name(), h)
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].Key < lines[j].Key })
	return lines, nil
}

func f32s(w io.Writer, xs []float32) {
	b := make([]byte, 4*len(xs))
	for i, x := range xs {
		u := math.Float32bits(x)
		if x != x {
			u = 0x7fc00000
		}
		binary.LittleEndian.PutUint32(b[4*i:], u)
	}
	binary.Write(w, binary.LittleEndian, int64(len(xs)))
	w.Write(b)
}

func f64s(w io.Writer, xs ...float64) {
	b := make([]byte, 8*len(xs))
	for i, x := range xs {
		u := math.Float64bits(x)
		if x != x {
			u = 0x7ff8000000000000
		}
		binary.LittleEndian.PutUint64(b[8*i:], u)
	}
	binary.Write(w, binary.LittleEndian, int64(len(xs)))
	w.Write(b)
}

func hashInputs(in *problem.Inputs) hash.Hash {
	h := sha256.New()
	binary.Write(h, binary.LittleEndian, []int64{int64(in.T), int64(in.H), int64(in.Hkv), int64(in.D), int64(in.Dv),
		int64(in.B), int64(in.S), int64(in.Win), int64(in.TopK), int64(in.BS), int64(in.W)})
	f64s(h, in.Scale)
	for _, t := range [][]float32{in.Q, in.Sink, in.OriKV, in.CmpKV, in.K, in.V} {
		f32s(h, t)
	}
	ints := [][]int32{in.OriBT, in.CmpBT, in.Idx, in.Seqused}
	// The first two families hash as they did before the others existed,
	// the pypto families their own fields; every other family, a new one
	// included, hashes the later fields too.
	switch {
	case in.Family == problem.Sparse || in.Family == problem.Window:
	case problem.IsPypto(in.Family):
		ints = append(ints, in.WinIdx, in.SwaLens, in.Pos, []int32{int32(in.IdxTopK), int32(in.CBS), int32(in.Ratio), int32(in.MBcmp)})
	default:
		for _, t := range [][]float32{in.Alibi, in.CombV, in.CombS, in.Cache, in.ExtraCache} {
			f32s(h, t)
		}
		f64s(h, in.Softcap)
		ints = append(ints, in.CuQ, in.CuK, in.ExtraIdx, in.TopkLen, in.ExtraTopkLen,
			[]int32{int32(in.WinLeft), int32(in.WinRight), int32(in.States), int32(in.ExtraTopK)})
	}
	for _, t := range ints {
		binary.Write(h, binary.LittleEndian, int64(len(t)))
		binary.Write(h, binary.LittleEndian, t)
	}
	return h
}

func hashRef(r *ref.Result) hash.Hash {
	h := sha256.New()
	for _, f := range [][]float64{r.O, r.AbsV, r.Dev1, r.DevA, r.DevX, r.DevM} {
		f64s(h, f...)
	}
	for _, w := range r.Rows {
		binary.Write(h, binary.LittleEndian, int64(w.N))
		f64s(h, w.M, w.Sink, w.PSink, w.MaxA, w.MaxQK, w.MaxAbsX, w.MaxDiff, w.MaxAbsV, w.MaxAbsQ, w.PMax, w.ZeroA, w.ZeroX)
	}
	return h
}

// Header starts the golden file.
const Header = "# attnvet determinism hashes: case/what sha256 (see internal/determinism).\n" +
	"# Regenerate on amd64 with: go test ./internal/determinism -update\n"

// Format writes lines in the golden format.
func Format(w io.Writer, lines []Line) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(Header)
	for _, l := range lines {
		fmt.Fprintf(bw, "%s %s\n", l.Key, l.Hash)
	}
	return bw.Flush()
}

// Parse reads the golden format.
func Parse(r io.Reader) ([]Line, error) {
	var lines []Line
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		f := strings.Fields(t)
		if len(f) != 2 || len(f[1]) != 64 {
			return nil, fmt.Errorf("line %d: %q: want \"key sha256\"", n, t)
		}
		lines = append(lines, Line{f[0], f[1]})
	}
	return lines, sc.Err()
}
