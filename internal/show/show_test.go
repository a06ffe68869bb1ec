package show

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/testkit"
	"github.com/attnvet/attnvet/internal/tolerance"
)

// TestReplayGolden pins replay's printout, byte for byte, on corpus cases
// that take each of its paths: a pass, a mutant's failure (worst
// elements, allowance terms, the worst row's keys), a contract violation,
// a row outside the domain, a +inf sink. Run with -update after a
// deliberate change, and read the diff.
func TestReplayGolden(t *testing.T) {
	for _, tc := range []struct{ file, kernel, crit string }{
		{"sparse_k17_bc16_plus1.json", "tiled/bc16/bf16", tolerance.NameBound},
		{"sparse_k1_sink.json", "mutant:pr301-n1-poison", tolerance.NameBound},
		{"sparse_s2_per_token_lengths.json", "mutant:s2-shared-length", tolerance.NameBound},
		{"sparse_pad_in_prefix_violation.json", "tiled/bc128/bf16", tolerance.NameBound},
		{"sparse_zero_weight_score_overflows_fp16.json", "splitkv/p2/bc32/fp16acc", tolerance.NameBound},
		{"sparse_sink_pos_inf.json", "stream/bf16", tolerance.NameProb},
		{"dense_paged_page3_odd_gqa.json", "tiled/bc32/bf16", tolerance.NameBound},
		{"csa_window_short_blocks.json", "pypto/bf16rne", tolerance.NameBound},
	} {
		name := strings.TrimSuffix(tc.file, ".json") + "__" + strings.NewReplacer("/", "_", ":", "_").Replace(tc.kernel)
		t.Run(name, func(t *testing.T) {
			c, err := cases.Load(filepath.Join("..", "..", "corpus", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			tg, err := targets.Resolve(tc.kernel, targets.Options{})
			if err != nil {
				t.Fatal(err)
			}
			crit, _ := tolerance.Lookup(tc.crit)
			d, err := campaign.Check(c, tg, crit)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			Replay(&b, tc.file, d, 3)
			testkit.Golden(t, filepath.Join("testdata", name+".golden"), b.Bytes())
		})
	}
}

// TestTopK: the bounded worst-element list is what a stable sort of all
// elements, cut to k, gives.
func TestTopK(t *testing.T) {
	vals := []float64{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 9, 0, 9}
	for k := 0; k <= len(vals)+1; k++ {
		tk := TopK[int]{K: k, Key: func(i int) float64 { return vals[i] }}
		for i := range vals {
			tk.Add(i)
		}
		var want []int
		for i := range vals {
			want = append(want, i)
		}
		for i := 1; i < len(want); i++ { // insertion sort: stable, descending
			for j := i; j > 0 && vals[want[j]] > vals[want[j-1]]; j-- {
				want[j], want[j-1] = want[j-1], want[j]
			}
		}
		want = want[:min(k, len(want))]
		if fmt.Sprint(tk.Items) != fmt.Sprint(want) && !(len(want) == 0 && len(tk.Items) == 0) {
			t.Errorf("k=%d: %v, want %v", k, tk.Items, want)
		}
	}
}
