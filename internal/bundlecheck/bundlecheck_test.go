package bundlecheck

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/testbundle"
	"github.com/attnvet/attnvet/internal/testkit"
	"github.com/attnvet/attnvet/internal/tolerance"
)

func windowCase() cases.Case {
	return cases.Case{Version: 1, Family: problem.Window, Seed: 6, H: 4, Hkv: 2, D: 16, Dv: 8, T: 24, Window: 6,
		Sink: &cases.Sink{Kind: "random", Scale: 1}}
}

func sparseCase() cases.Case {
	return cases.Case{Version: 1, Family: problem.Sparse, Seed: 5, H: 4, D: 16, B: 2, S: 2, Win: 8, IdxTopK: 12, BlockSize: 4,
		Seqused: []int{9, 30}, Sink: &cases.Sink{Kind: "random", Scale: 1}, Indices: "shuffled", BlockTable: "permuted"}
}

// TestPrintGolden pins check's printout and its JUnit XML, byte for byte,
// on a bundle of each status: pass, fail (a mutant's output: the worst
// elements, their allowance terms, the worst row, the hints), contract,
// invalid. Run with -update after a deliberate change, and read the diff.
func TestPrintGolden(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.safetensors")
	os.WriteFile(garbage, []byte("not a bundle"), 0o644)
	bundles := []string{
		testbundle.Write(t, dir, "window_pass.safetensors", windowCase(), "tiled/bc128/bf16", nil),
		testbundle.Write(t, dir, "window_fail.safetensors", windowCase(), "mutant:window-start-off-by-one", nil),
		testbundle.Write(t, dir, "sparse_contract.safetensors", sparseCase(), "tiled/bc128/bf16", func(f *bundle.File) {
			for i := range f.Tensors {
				if f.Tensors[i].Name == interop.TSeqused {
					f.Tensors[i].Data[0] = 0xff // seqused_kv[0] = a negative length
					f.Tensors[i].Data[1] = 0xff
					f.Tensors[i].Data[2] = 0xff
					f.Tensors[i].Data[3] = 0xff
				}
			}
		}),
		testbundle.Write(t, dir, "dense_paged.safetensors", corpusCase(t, "dense_paged_page3_odd_gqa.json"), "tiled/bc32/bf16", nil),
		garbage,
	}
	doc := File{Version: Version, Command: "check", Criteria: []string{tolerance.NameBound}}
	var out bytes.Buffer
	for _, path := range bundles {
		r := Check(path, Options{Gating: doc.Criteria, Limit: 1 << 30})
		r.Path, r.Seconds = filepath.Base(path), 0
		r.Error = strings.ReplaceAll(r.Error, dir+string(filepath.Separator), "")
		Print(&out, &r, 3)
		out.WriteString("\n")
		doc.Bundles = append(doc.Bundles, r)
	}
	testkit.Golden(t, filepath.Join("testdata", "check.golden"), out.Bytes())
	testkit.Golden(t, filepath.Join("testdata", "check_junit.golden"), JUnit(&doc))
	want := []string{"pass", "fail", "contract", "pass", "invalid"}
	for i, r := range doc.Bundles {
		if r.Status != want[i] {
			t.Errorf("%s: status %s, want %s", r.Path, r.Status, want[i])
		}
	}
}

func corpusCase(t *testing.T, name string) cases.Case {
	t.Helper()
	c, err := cases.Load(filepath.Join("..", "..", "corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
