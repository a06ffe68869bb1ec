// Package interop converts between tensor bundles (internal/bundle:
// safetensors or .npz files a kernel team dumps from its harness, and the
// frames of the exec worker protocol) and problem.Inputs, under the tensor
// names of SPEC.md and the metadata contract below (docs/interop.md).
//
// Tensors (row-major):
//
//	family sparse: q [T,H,D]; ori_kv [NB,BS,1,D] (or [NB,BS,D]);
//	               ori_block_table [B,MB_ori]; cmp_kv and cmp_block_table
//	               (optional, together: absent = no compressed pool);
//	               cmp_sparse_indices [T,TOPK]; attn_sink [H] (optional:
//	               absent = no sink); seqused_kv [B]
//	family window: q [T,H,D]; k [T,Hkv,D]; v [T,Hkv,Dv]; attn_sink [H]
//	               (optional)
//	output:        o [T,H,Dv]
//
// Metadata (all values strings; safetensors __metadata__, or command-line
// flags that override it in either format):
//
//	family            sparse | window          (default: inferred from the tensors)
//	softmax_scale     float                    (default D^-0.5)
//	window            sparse: WIN; window: W   (sparse: TOPK − index_topk; window: 0 = full causal)
//	index_topk        sparse: IDX_TOPK         (default TOPK − window)
//	tokens_per_batch  sparse: S                (default 1; T must equal B·S)
//	profile           a built-in profile name  (shorthand; the fields below override it)
//	in_dtype          bf16 | fp16 | fp32       (default: the profile's, else q's dtype)
//	score_dtype       bf16 | fp16 | fp32       (default: the profile's, else fp32)
//	p_dtype           bf16 | fp16 | fp32       (default: the profile's, else in_dtype)
//	acc_dtype         bf16 | fp16 | fp32       (default: the profile's, else fp32)
//	out_dtype         bf16 | fp16 | fp32       (default: the profile's, else o's dtype)
//	out_rounding      rne | away               (default: the profile's, else rne)
//	l_from_rounded_p  true | false             (default: the profile's, else false)
//	exp_ulps          float > 0                (default: the profile's, else 2)
//	exp_subnormals    flush | gradual          (default flush: the exp may return 0 below 2^-126)
//
// Values must be exactly representable in their declared formats: q, the
// keys and values in in_dtype, o in out_dtype, attn_sink in fp32. A wider
// container is fine (bf16 values stored as F32, as a harness that calls
// .float() writes them); a value that is not representable is an error
// naming the tensor and the element, never rounded silently: the bound
// would otherwise judge a problem other than the one the kernel solved.
package interop

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/internal/profile"
)

// Tensor names (SPEC.md).
const (
	TQ       = "q"
	TOriKV   = "ori_kv"
	TOriBT   = "ori_block_table"
	TCmpKV   = "cmp_kv"
	TCmpBT   = "cmp_block_table"
	TIdx     = "cmp_sparse_indices"
	TSink    = "attn_sink"
	TSeqused = "seqused_kv"
	TK       = "k"
	TV       = "v"
	TO       = "o"
)

// Metadata keys: the contract.
const (
	KeyFamily         = "family"
	KeySoftmaxScale   = "softmax_scale"
	KeyWindow         = "window"
	KeyIndexTopK      = "index_topk"
	KeyTokensPerBatch = "tokens_per_batch"
	KeyProfile        = "profile"
	KeyInDType        = "in_dtype"
	KeyScoreDType     = "score_dtype"
	KeyPDType         = "p_dtype"
	KeyAccDType       = "acc_dtype"
	KeyOutDType       = "out_dtype"
	KeyOutRounding    = "out_rounding"
	KeyLFromRoundedP  = "l_from_rounded_p"
	KeyExpULPs        = "exp_ulps"
	KeyExpSubnormals  = "exp_subnormals"
	// KeyVersion marks a bundle attnvet wrote ("1").
	KeyVersion = "attnvet_bundle"
	// KeyCase is the case JSON a bundle was exported from (attnvet export).
	KeyCase = "attnvet_case"
	// KeyName is a kernel's display name (worker replies; optional).
	KeyName = "name"
	// KeyError is a worker's error reply.
	KeyError = "error"
)

// Version is the bundle layout version Encode writes under KeyVersion.
const Version = "1"

// ProblemKeys are the keys that describe the problem; ProfileKeys those
// that declare the precision profile.
var (
	ProblemKeys = []string{KeyFamily, KeySoftmaxScale, KeyWindow, KeyIndexTopK, KeyTokensPerBatch}
	ProfileKeys = []string{KeyProfile, KeyInDType, KeyScoreDType, KeyPDType, KeyAccDType, KeyOutDType, KeyOutRounding, KeyLFromRoundedP, KeyExpULPs, KeyExpSubnormals}
)

// ParseFormat reads a dtype as harnesses spell it: bf16, bfloat16,
// torch.bfloat16, fp16, f16, float16, half, fp32, f32, float32, float,
// fp64, float64, double; case-insensitive.
func ParseFormat(s string) (num.Format, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, p := range []string{"torch.", "numpy.", "np.", "jnp."} {
		t = strings.TrimPrefix(t, p)
	}
	switch t {
	case "float":
		return num.FP32, nil
	case "double":
		return num.FP64, nil
	}
	f, err := num.ParseFormat(t)
	if err != nil {
		return 0, fmt.Errorf("unknown dtype %q (want bf16, fp16 or fp32)", s)
	}
	return f, nil
}

// ParseRounding reads out_rounding: rne (ties to even; also "even",
// "rint") or away (ties away from zero; also "round").
func ParseRounding(s string) (num.Rounding, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "rne", "even", "rint", "nearest_even":
		return num.RNE, nil
	case "away", "round", "nearest_away":
		return num.Away, nil
	}
	return 0, fmt.Errorf("unknown rounding %q (want rne or away)", s)
}

// ResolveProfile builds the precision profile meta declares (the profile
// shorthand, then each explicit field). defIn and defOut are the formats
// used for in_dtype and out_dtype when neither meta nor a named profile
// gives them (Decode passes the dtypes of q and o). A profile equal to a
// built-in one takes its name; any other is named "custom".
func ResolveProfile(meta map[string]string, defIn, defOut num.Format) (profile.Profile, error) {
	var p profile.Profile
	named := false
	if n, ok := meta[KeyProfile]; ok && strings.TrimSpace(n) != "" {
		b, err := profile.Lookup(strings.TrimSpace(n))
		if err != nil {
			return p, metaErr(KeyProfile, "%v", err)
		}
		p, named = b, true
	} else {
		p = profile.Profile{In: defIn, Score: num.FP32, Acc: num.FP32, Out: defOut, OutRound: num.RNE}
	}
	format := func(key string, dst *num.Format) error {
		s, ok := meta[key]
		if !ok {
			return nil
		}
		f, err := ParseFormat(s)
		if err != nil {
			return metaErr(key, "%v", err)
		}
		*dst = f
		return nil
	}
	if err := format(KeyInDType, &p.In); err != nil {
		return p, err
	}
	if !named {
		p.P = p.In // the common device kernel rounds P to the input dtype
	}
	for _, kf := range []struct {
		key string
		dst *num.Format
	}{{KeyScoreDType, &p.Score}, {KeyPDType, &p.P}, {KeyAccDType, &p.Acc}, {KeyOutDType, &p.Out}} {
		if err := format(kf.key, kf.dst); err != nil {
			return p, err
		}
	}
	if s, ok := meta[KeyOutRounding]; ok {
		r, err := ParseRounding(s)
		if err != nil {
			return p, metaErr(KeyOutRounding, "%v", err)
		}
		p.OutRound = r
	}
	if s, ok := meta[KeyLFromRoundedP]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return p, metaErr(KeyLFromRoundedP, "%q is not true or false", s)
		}
		p.LFromRoundedP = b
	}
	if s, ok := meta[KeyExpULPs]; ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			return p, metaErr(KeyExpULPs, "%q is not a positive number of ulps", s)
		}
		p.ExpULPs = v
	}
	if s, ok := meta[KeyExpSubnormals]; ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "flush":
			p.ExpGradual = false
		case "gradual":
			p.ExpGradual = true
		default:
			return p, metaErr(KeyExpSubnormals, "%q is not flush or gradual", s)
		}
	}
	for _, c := range []struct {
		key string
		f   num.Format
	}{{KeyInDType, p.In}, {KeyOutDType, p.Out}} {
		if c.f == num.FP64 {
			return p, metaErr(c.key, "fp64 is not supported: tensors are judged as bf16, fp16 or fp32 values")
		}
	}
	p.Name = "custom"
	for _, n := range profile.Names() {
		b := profile.MustLookup(n)
		b.Name = ""
		q := p
		q.Name = ""
		if b == q {
			p.Name = n
			break
		}
	}
	return p, nil
}

// ProfileMeta is the metadata that declares p: every stage explicitly,
// plus the profile shorthand when p is a built-in one.
func ProfileMeta(p profile.Profile) map[string]string {
	m := map[string]string{
		KeyInDType:     p.In.String(),
		KeyScoreDType:  p.Score.String(),
		KeyPDType:      p.P.String(),
		KeyAccDType:    p.Acc.String(),
		KeyOutDType:    p.Out.String(),
		KeyOutRounding: p.OutRound.String(),
	}
	if p.LFromRoundedP {
		m[KeyLFromRoundedP] = "true"
	}
	if p.ExpULPs > 0 {
		m[KeyExpULPs] = strconv.FormatFloat(p.ExpULPs, 'g', -1, 64)
	}
	if p.ExpGradual {
		m[KeyExpSubnormals] = "gradual"
	}
	if b, err := profile.Lookup(p.Name); err == nil && b == p {
		m[KeyProfile] = p.Name
	}
	return m
}

// KnownKey reports whether k is a key of the contract (or one attnvet
// writes).
func KnownKey(k string) bool {
	switch k {
	case KeyVersion, KeyCase, KeyName, KeyError, KeyOutputs:
		return true
	}
	for _, keys := range [][]string{ProblemKeys, ProfileKeys, DenseKeys, PyptoKeys, QuantKeys, FP8DenseKeys, MaxLogitKeys, MLAKeys, Int4KVKeys} {
		if slices.Contains(keys, k) {
			return true
		}
	}
	return false
}

func metaErr(key, format string, a ...any) error {
	return fmt.Errorf("metadata %s: %s", key, fmt.Sprintf(format, a...))
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
