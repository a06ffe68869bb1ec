package corpus_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/corpus"
	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
	"github.com/attnvet/attnvet/props"
)

// pins are the edge classes each required file exists to hit: if an edit
// loses the edge, the test says so.
var pins = map[string][]string{
	"sparse_k0_stale_scratch.json":                   {props.ClassN0},
	"sparse_k1_sink.json":                            {props.ClassN1},
	"sparse_k1_nosink.json":                          {props.ClassN1},
	"sparse_k1_compressed_only.json":                 {props.ClassN1},
	"sparse_k2.json":                                 {props.ClassN2},
	"sparse_k15_bc16_minus1.json":                    {props.ClassTileMinus1},
	"sparse_k16_bc16.json":                           {props.ClassTile},
	"sparse_k17_bc16_plus1.json":                     {props.ClassTilePlus1},
	"sparse_k31_bc32_minus1.json":                    {props.ClassTileMinus1},
	"sparse_k32_bc32.json":                           {props.ClassTile},
	"sparse_k33_bc32_plus1.json":                     {props.ClassTilePlus1},
	"sparse_k63_bc64_minus1.json":                    {props.ClassTileMinus1},
	"sparse_k64_bc64.json":                           {props.ClassTile},
	"sparse_k65_bc64_plus1.json":                     {props.ClassTilePlus1},
	"sparse_k127_bc128_minus1.json":                  {props.ClassTileMinus1},
	"sparse_k128_bc128.json":                         {props.ClassTile},
	"sparse_k129_bc128_plus1.json":                   {props.ClassTilePlus1},
	"sparse_len_win_minus1.json":                     {props.ClassWinMinus1},
	"sparse_len_win.json":                            {props.ClassWin},
	"sparse_len_win_plus1.json":                      {props.ClassWinPlus1},
	"sparse_s2_per_token_lengths.json":               {props.ClassS2, props.ClassN0, props.ClassN1, props.ClassWin, props.ClassWinPlus1},
	"sparse_pad_in_prefix_violation.json":            {props.ClassPadIn},
	"sparse_block_table_out_of_range_violation.json": {props.ClassInvalidBT},
	"sparse_valid_slot_after_prefix_violation.json":  {props.ClassValidAfter},
	"sparse_window_slot_invalid_violation.json":      {props.ClassWindowSlot},
	"sparse_negative_seqused_violation.json":         {props.ClassNegSeqused},
	"sparse_sink_pos_inf.json":                       {props.ClassSinkPosInf},
	"sparse_sink_neg_inf.json":                       {props.ClassSinkNegInf},
	"sparse_sink_per_head_extremes.json":             {props.ClassSinkPosInf, props.ClassSinkNegInf, props.ClassSinkHuge, props.ClassSinkTiny},
	"sparse_sink_huge.json":                          {props.ClassSinkHuge},
	"sparse_sink_tiny.json":                          {props.ClassSinkTiny},
	"sparse_scores_overflow_exp.json":                {props.ClassExpOverflow},
	"window_scores_overflow_exp.json":                {props.ClassExpOverflow, props.ClassWinBoundary},
	"sparse_equal_scores_zeroq.json":                 {props.ClassEqual},
	"window_equal_scores_zeroq.json":                 {props.ClassEqual},
	"sparse_dominant_key.json":                       {props.ClassDominant},
	"sparse_d1.json":                                 {props.ClassD1},
	"window_d1.json":                                 {props.ClassD1},
	"sparse_h17_two_head_tiles.json":                 {props.ClassHeads},
	"window_h7_gqa.json":                             {props.ClassHeads, props.ClassGQA, props.ClassWinBoundary},
	"sparse_fp16.json":                               {props.ClassFP16},
	"window_fp16_subnormal_values.json":              {props.ClassFP16},
	"window_fp16_dominant_saturates.json":            {props.ClassFP16, props.ClassDominant},
	"sparse_duplicate_index.json":                    {props.ClassDuplicate},
	"sparse_permuted_block_table.json":               {props.ClassPermuted, props.ClassShuffled},
	"sparse_poison_nan.json":                         {props.ClassPoison},
	"sparse_specials_zero_subnormal_max.json":        {props.ClassSignedZero, props.ClassSubnormal, props.ClassMaxFinite},
	"sparse_topk_production.json":                    {props.ClassTopK},
	"sparse_k1100_large.json":                        {props.ClassLarge},
	"window_t129_full_causal.json":                   {props.ClassN1, props.ClassN2, props.ClassTileMinus1, props.ClassTile, props.ClassTilePlus1},
	"window_w16_boundary.json":                       {props.ClassWinBoundary, props.ClassGQA},
	"window_t1_single_key.json":                      {props.ClassN1},
	// pypto's decode families (SPEC-pypto-today.md, "Edge cases").
	"csa_p0_window_only.json":              {props.ClassPosZero, props.ClassShortWindow},
	"csa_bound_edge.json":                  {props.ClassCmpBoundEdge},
	"csa_raw_invalid_indices.json":         {props.ClassRawInvalid, props.ClassPoison},
	"csa_row0_nonfinite_unreferenced.json": {props.ClassRow0Poison},
	"csa_duplicate_cmp.json":               {props.ClassCmpDuplicate},
	"csa_unread_idx_columns.json":          {props.ClassUnreadIdx},
	"csa_window_short_blocks.json":         {props.ClassShortWindow},
	"hca_all_invalid_block.json":           {props.ClassAllInvBlock},
	"hca_empty_key_set_neg_inf_sink.json":  {props.ClassEmptyKeys, props.ClassSinkNegInf},
	"hca_sink_pos_inf.json":                {props.ClassSinkPosInf},
	"swa_short_lens.json":                  {props.ClassSwaShortLens, props.ClassPoison},
	"swa_p0.json":                          {props.ClassPosZero},
	"csa_unmapped_page_empty_set.json":     {props.ClassUnmappedPage, props.ClassEmptyKeys},
	// FlashMLA sparse decode (SPEC-flashmla.md, "Edge cases").
	"mla_topk_length_zero.json":              {props.ClassTopkLength, props.ClassN0, props.ClassLSE},
	"mla_all_indices_invalid.json":           {props.ClassAllInvalid, props.ClassLSE},
	"mla_extra_scope_own_length.json":        {props.ClassExtraScope, props.ClassTopkLength, props.ClassPoison},
	"mla_extra_scope_no_extra_length.json":   {props.ClassExtraScope, props.ClassTopkLength},
	"mla_sink_pos_inf.json":                  {props.ClassSinkPosInf, props.ClassLSE},
	"mla_sink_per_head_inf_empty_row.json":   {props.ClassSinkPosInf, props.ClassSinkNegInf, props.ClassN0, props.ClassLSE},
	"mla_dv_lt_dqk.json":                     {props.ClassPoison},
	"mla_duplicate_indices.json":             {props.ClassTile},
	"mla_page_not_dividing_topk.json":        {props.ClassPoison},
	"mla_fp8_v32_fp32_scales_poison.json":    {props.ClassPoison, props.ClassLSE},
	"mla_fp8_v32_edge_tiles.json":            {props.ClassPoison, props.ClassLSE},
	"mla_fp8_model1_extra_scope_poison.json": {props.ClassPoison, props.ClassExtraScope},
	// flashinfer's merge_state and FlashAttention's split combine
	// (SPEC-flashinfer.md, "merge_state").
	"combine_one_empty_state.json":     {props.ClassEmptyStates},
	"combine_all_empty_neg_inf.json":   {props.ClassEmptyStates},
	"combine_all_empty_pos_inf.json":   {props.ClassEmptyStates},
	"combine_pos_inf_empty_mixed.json": {props.ClassEmptyStates},
	"combine_dominant_state.json":      {props.ClassLSE},
	"combine_base2_lse.json":           {props.ClassEmptyStates},
	"combine_zero_states.json":         {props.ClassN0},
}

// kills are mutants (impl/mutant) a file must catch under the bound
// criterion: the defect its edge exists for.
var kills = map[string][]string{
	"mla_topk_length_zero.json":              {"lse-empty-nan", "maskinf-empty-row-nan"},
	"mla_all_indices_invalid.json":           {"lse-empty-nan", "maskinf-empty-row-nan", "lse-sink-included"},
	"mla_extra_scope_own_length.json":        {"mla-extra-cut-by-topk-length"},
	"mla_extra_scope_no_extra_length.json":   {"mla-extra-cut-by-topk-length"},
	"mla_sink_pos_inf.json":                  {"sink-ignored", "sink-sign-flipped", "lse-sink-included"},
	"mla_sink_per_head_inf_empty_row.json":   {"sink-ignored", "sink-in-numerator", "lse-empty-nan"},
	"mla_page_not_dividing_topk.json":        {"last-partial-tile-dropped", "no-alpha-l"},
	"mla_dv_lt_dqk.json":                     {"mla-v-last-columns"},
	"mla_duplicate_indices.json":             {"mla-indices-as-mask"},
	"mla_fp8_v32_fp32_scales_poison.json":    {"fp8-scale-ue8m0-rz", "fp8-scale-wrong-block", "fp8-scale-wrong-token", "fp8-scale-twice", "fp8-scale-missing", "fp8-rope-as-fp8"},
	"mla_fp8_v32_edge_tiles.json":            {"fp8-448-as-nan", "fp8-fn-as-fnuz", "fp8-scale-wrong-block"},
	"mla_fp8_model1_extra_scope_poison.json": {"fp8-model1-per-token", "fp8-448-as-nan", "fp8-fn-as-fnuz", "fp8-scale-wrong-token"},
	"combine_one_empty_state.json":           {"combine-empty-nan", "splitkv-empty-part-not-neutral"},
	"combine_all_empty_neg_inf.json":         {"combine-empty-nan", "lse-empty-nan"},
	"combine_all_empty_pos_inf.json":         {"combine-empty-nan", "combine-empty-state-weighted"},
	"combine_pos_inf_empty_mixed.json":       {"combine-empty-state-weighted", "combine-empty-nan"},
	"combine_dominant_state.json":            {"no-alpha-o"},
	"combine_base2_lse.json":                 {"lse-base2-declared-natural"},
	"combine_zero_states.json":               {"lse-empty-nan"},
	"dense_int4kv_per_channel_gqa.json":      {"int4-nibble-swap", "int4-bias-not-removed", "int4-int8-scale", "int4-channel-scale-no-head"},
	"dense_int4kv_per_tensor_paged.json":     {"int4-nibble-swap", "int4-bias-not-removed", "int4-int8-scale"},
}

var nameRE = regexp.MustCompile(`^(sparse|window|dense|csa|hca|swa|mla|combine)_[a-z0-9_]+\.json$`)

func all(t *testing.T) []corpus.Named {
	t.Helper()
	cs, err := corpus.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) == 0 {
		t.Fatal("empty corpus")
	}
	return cs
}

// TestFiles: names say the family and the edge, every file holds one
// canonical case (as Case.Marshal writes it) with a one-line description.
func TestFiles(t *testing.T) {
	for _, nc := range all(t) {
		c := nc.Case
		if !nameRE.MatchString(nc.Name) || !strings.HasPrefix(nc.Name, string(c.Family)+"_") {
			t.Errorf("%s: want <family>_<what it pins>.json in lower case (family %s)", nc.Name, c.Family)
		}
		if c.Description == "" || strings.ContainsAny(c.Description, "\n\r") {
			t.Errorf("%s: want a one-line description", nc.Name)
		}
		if c.Version != cases.Version {
			t.Errorf("%s: version %d, want %d", nc.Name, c.Version, cases.Version)
		}
		raw, err := corpus.FS().Open(nc.Name)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(raw)
		raw.Close()
		if !bytes.Equal(buf.Bytes(), c.Marshal()) {
			t.Errorf("%s: not in canonical form; want:\n%s", nc.Name, c.Marshal())
		}
	}
	names, err := corpus.Files()
	if err != nil || !slices.IsSorted(names) {
		t.Fatalf("Files() = %v, %v: want sorted names", names, err)
	}
}

// TestPins: the required files exist and hit the classes they are named for
// (tile files: a row with exactly that many keys).
func TestPins(t *testing.T) {
	have := map[string]cases.Case{}
	for _, nc := range all(t) {
		have[nc.Name] = nc.Case
	}
	kRE := regexp.MustCompile(`^sparse_k(\d+)[_.]`)
	for name, want := range pins {
		c, ok := have[name]
		if !ok {
			t.Errorf("missing corpus file %s", name)
			continue
		}
		got := props.Classes(c)
		for _, cl := range want {
			if !slices.Contains(got, cl) {
				t.Errorf("%s: does not hit %s (hits %v)", name, cl, got)
			}
		}
		if m := kRE.FindStringSubmatch(name); m != nil {
			n, _ := strconv.Atoi(m[1])
			in, err := cases.Generate(c, num.BF16)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for tok := 0; tok < in.T; tok++ {
				found = found || in.TokenLens(tok).SparseK == n && len(in.RefKeys(tok, 0, nil)) == n
			}
			if !found {
				t.Errorf("%s: no token attends exactly %d keys", name, n)
			}
		}
	}
}

// TestKills: each file of kills fails the mutants it names, so the edge it
// pins is one a real defect shows on.
func TestKills(t *testing.T) {
	for name, ms := range kills {
		c, err := corpus.Load(name)
		if err != nil {
			t.Errorf("missing corpus file %s: %v", name, err)
			continue
		}
		for _, m := range ms {
			t.Run(strings.TrimSuffix(name, ".json")+"/"+m, func(t *testing.T) {
				t.Parallel()
				tg, err := targets.Resolve(targets.MutantPrefix+m, targets.Options{})
				if err != nil {
					t.Fatal(err)
				}
				d, err := campaign.Check(c, tg, tolerance.BoundCriterion{Mode: tolerance.Rigorous})
				if err != nil {
					t.Fatal(err)
				}
				if d.Status != campaign.Fail {
					t.Errorf("mutant:%s is %v on %s, want it caught", m, d.Status, name)
				}
			})
		}
	}
}

// bf16Inputs is the corpus case name's BF16 inputs.
func bf16Inputs(t *testing.T, name string) *problem.Inputs {
	t.Helper()
	c, err := corpus.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	in, err := cases.Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestMLADuplicates: the mla duplicate file has a token that reads one
// cache row twice (the class list has no mla duplicate class).
func TestMLADuplicates(t *testing.T) {
	in := bf16Inputs(t, "mla_duplicate_indices.json")
	for tok := 0; tok < in.T; tok++ {
		idx, n, _ := in.MLAScope(tok, false)
		for i, x := range idx[:n] {
			if x >= 0 && slices.Contains(idx[i+1:n], x) {
				return
			}
		}
	}
	t.Error("mla_duplicate_indices.json: no token reads a cache row twice")
}

// TestCombineDominant: in the dominant file every row and head has one
// state whose lse leads the next by more than 26 (no class says so).
func TestCombineDominant(t *testing.T) {
	in := bf16Inputs(t, "combine_dominant_state.json")
	for r := 0; r < in.T; r++ {
		for h := 0; h < in.H; h++ {
			s := make([]float64, in.States)
			for k := range s {
				s[k] = float64(in.CombS[(r*in.States+k)*in.H+h])
			}
			slices.Sort(s)
			if gap := s[len(s)-1] - s[len(s)-2]; !(gap > 26) {
				t.Errorf("row %d head %d: the largest lse leads by %.3g, want > 26", r, h, gap)
			}
		}
	}
}

// TestReplay checks every corpus case against every correct emulation:
// within the rigorous bound of the reference, or, for a contract
// violation, the violation reported (and not judged).
func TestReplay(t *testing.T) {
	for _, nc := range all(t) {
		t.Run(strings.TrimSuffix(nc.Name, ".json"), func(t *testing.T) {
			t.Parallel()
			c := nc.Case
			violation := strings.HasSuffix(nc.Name, "_violation.json")
			for _, f := range []num.Format{num.BF16, num.FP16, num.FP32} {
				if c.DType != "" && f != c.Format(f) {
					continue
				}
				in, err := cases.Generate(c, f)
				if err != nil {
					t.Fatal(err)
				}
				vs := in.Violations()
				if violation && len(vs) == 0 {
					t.Fatalf("%s inputs: the planted contract violation is not reported", f)
				}
				if !violation && len(vs) > 0 {
					t.Fatalf("%s inputs: unexpected contract violation %v (name the file *_violation.json if meant)", f, vs[0])
				}
			}
			var ch props.Checker
			if err := ch.Check(c); err != nil {
				var f *props.Failure
				kernel := ""
				if errors.As(err, &f) {
					kernel = " --kernel " + f.Kernel
				}
				t.Fatalf("%v\nreplay: go run ./cmd/attnvet replay corpus/%s%s", err, nc.Name, kernel)
			}
		})
	}
}

// TestMetamorphic runs every metamorphic property on every valid corpus
// case (adapted to the property's precondition).
func TestMetamorphic(t *testing.T) {
	for _, nc := range all(t) {
		if strings.HasSuffix(nc.Name, "_violation.json") {
			continue
		}
		if f := nc.Case.Family; f != "sparse" && f != "window" {
			continue // the metamorphic properties are the sparse and window families' (props.Gen draws them for those)
		}
		t.Run(strings.TrimSuffix(nc.Name, ".json"), func(t *testing.T) {
			t.Parallel()
			var ch props.Checker
			for _, p := range props.Properties() {
				if p.Name == "differential" || (p.Family != "" && p.Family != nc.Case.Family) {
					continue
				}
				c := nc.Case
				if p.Adapt != nil {
					c = p.Adapt(c)
				}
				if err := p.Check(&ch, c); err != nil {
					t.Errorf("%s: %v\ncase: %s", p.Name, err, c)
				}
			}
		})
	}
}

func ExampleLoad() {
	c, err := corpus.Load("sparse_k1_sink.json")
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Family, c.Seqused, c.Sink.Kind)
	// Output: sparse [1] random
}
