package worker

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/interop"
	"github.com/attnvet/attnvet/internal/problem"
)

// Protocol v2 hello keys (docs/worker.md "Protocol v2").
const (
	KeyProtocolMax = "protocol_max" // attnvet's hello: the highest version it speaks
	KeyDTypePrefix = "dtype."       // dtype.NAME: the storage dtype of input NAME
	KeyFamilies    = "families"
	KeyMaxTokens   = "max_tokens"
	KeyMaxHeads    = "max_heads"
	KeyMaxHeadDim  = "max_head_dim"
	KeyHeadDims    = "head_dims"
	KeyDvEqualsD   = "dv_equals_d"
	KeySink        = "sink"
	KeyMaxInflight = "max_inflight"
	// KeySplits (protocol 2): the split or tile counts the worker can run a
	// case with, comma-separated ("1,2,4"); a request may then carry
	// split=N (KeySplit), and every N must give a result within the bound
	// (campaign --recheck: split_dependent). docs/worker.md "Rechecks".
	KeySplits = "splits"
	KeySplit  = "split"
	// KeyQuantized (protocol 2): the quantized dense inputs the worker
	// reads, comma-separated, named as the case fields that draw them
	// (QuantFP8, QuantInt8KV, QuantNVFP4KV, QuantInt4KV); such a request carries the
	// codes and scales interop.Encode writes (docs/worker.md "Quantized
	// inputs"). Without it those cases are skipped.
	KeyQuantized = "quantized"
)

// The values of KeyQuantized.
const (
	QuantFP8     = "fp8"      // FA3's e4m3 q/k/v with q/k/v_descale
	QuantInt8KV  = "int8_kv"  // ORT's I8 k/v with k_scale/v_scale
	QuantNVFP4KV = "nvfp4_kv" // flashinfer's packed e2m1 k/v with block and global scales
	QuantInt4KV  = "int4_kv"  // ORT's packed U8 INT4 k/v (+8 bias) with k_scale/v_scale
)

var quantKinds = []string{QuantFP8, QuantInt8KV, QuantNVFP4KV, QuantInt4KV}

// MaxInflight bounds max_inflight.
const MaxInflight = 64

// ProtocolMax is the highest protocol version attnvet speaks.
const ProtocolMax = "2"

var (
	floatInputs = []string{interop.TQ, interop.TK, interop.TV, interop.TOriKV, interop.TCmpKV, interop.TSink}
	intInputs   = []string{interop.TOriBT, interop.TCmpBT, interop.TIdx, interop.TSeqused}
	v2Keys      = []string{KeyFamilies, KeyMaxTokens, KeyMaxHeads, KeyMaxHeadDim, KeyHeadDims, KeyDvEqualsD, KeySink, KeyMaxInflight, KeySplits, KeyQuantized}
)

// decl is what a hello declares beyond the profile: v2's input dtypes
// and the cases the worker takes. The zero value is v1 (everything as
// the contract stores it, every case sent).
type decl struct {
	v2        bool
	dtypes    map[string]bundle.DType // input name → storage dtype
	families  map[problem.Family]bool // nil: all
	famList   string
	maxTokens int
	maxHeads  int
	maxHD     int
	headDims  map[int]bool
	hdList    string
	dvEqD     bool
	noSink    bool
	inflight  int             // requests in flight per process (0, 1: one)
	splits    []int           // split counts a request may ask for (KeySplits)
	quant     map[string]bool // quantized inputs read (KeyQuantized); nil: none
	quantList string
	raw       map[string]string // the v2 keys as declared, to compare restarts
}

// parseDecl reads the v2 declarations of a hello reply.
func parseDecl(meta map[string]string) (decl, error) {
	var d decl
	d.raw = map[string]string{}
	v2key := ""
	for k, v := range meta {
		if strings.HasPrefix(k, KeyDTypePrefix) || contains(v2Keys, k) {
			d.raw[k] = v
			if v2key == "" || k < v2key {
				v2key = k
			}
		}
	}
	switch p := meta[KeyProtocol]; p {
	case "", "1":
		if v2key != "" {
			return d, fmt.Errorf("its hello declares %s=%q, a protocol 2 key, without protocol=2", v2key, meta[v2key])
		}
		return d, nil
	case "2":
		d.v2 = true
	default:
		return d, fmt.Errorf("its hello declares protocol=%q; attnvet speaks 1 and 2", p)
	}
	for _, k := range sortedKeys(d.raw) {
		v := strings.TrimSpace(d.raw[k])
		bad := func(format string, a ...any) error {
			return fmt.Errorf("its hello declares %s=%q: %s", k, d.raw[k], fmt.Sprintf(format, a...))
		}
		if name, ok := strings.CutPrefix(k, KeyDTypePrefix); ok {
			dt, err := parseDType(v)
			if err != nil {
				return d, bad("%v", err)
			}
			switch {
			case contains(floatInputs, name):
				if !dt.IsFloat() {
					return d, bad("%s is a float input: want BF16, F16, F32 or F64", name)
				}
			case contains(intInputs, name):
				if !dt.IsInt() {
					return d, bad("%s is an integer input: want I32 or I64", name)
				}
			default:
				return d, bad("no input is named %q (inputs: %s, %s)", name, strings.Join(floatInputs, ", "), strings.Join(intInputs, ", "))
			}
			if d.dtypes == nil {
				d.dtypes = map[string]bundle.DType{}
			}
			d.dtypes[name] = dt
			continue
		}
		switch k {
		case KeyFamilies:
			d.families = map[problem.Family]bool{}
			var names []string
			for _, f := range strings.Split(v, ",") {
				fam, err := problem.ParseFamily(strings.TrimSpace(f))
				if err != nil {
					return d, bad("%v", err)
				}
				f = string(fam)
				d.families[fam] = true
				names = append(names, f)
			}
			d.famList = strings.Join(names, ",")
		case KeySplits:
			for _, f := range strings.Split(v, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil || n < 1 || n > 1<<20 {
					return d, bad("want split counts from 1 to 2^20, comma-separated")
				}
				d.splits = append(d.splits, n)
			}
		case KeyQuantized:
			d.quant = map[string]bool{}
			for _, q := range strings.Split(v, ",") {
				q = strings.ToLower(strings.TrimSpace(q))
				if !contains(quantKinds, q) {
					return d, bad("unknown quantized input %q (want %s, comma-separated)", q, strings.Join(quantKinds, ", "))
				}
				d.quant[q] = true
			}
			var names []string
			for _, q := range quantKinds {
				if d.quant[q] {
					names = append(names, q)
				}
			}
			d.quantList = strings.Join(names, ",")
		case KeyMaxInflight:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxInflight {
				return d, bad("want an integer from 1 to %d", MaxInflight)
			}
			d.inflight = n
		case KeyMaxTokens, KeyMaxHeads, KeyMaxHeadDim:
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return d, bad("want an integer ≥ 1")
			}
			switch k {
			case KeyMaxTokens:
				d.maxTokens = n
			case KeyMaxHeads:
				d.maxHeads = n
			default:
				d.maxHD = n
			}
		case KeyHeadDims:
			d.headDims = map[int]bool{}
			var ns []int
			for _, s := range strings.Split(v, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || n < 1 {
					return d, bad("want a comma list of integers ≥ 1")
				}
				if !d.headDims[n] {
					ns = append(ns, n)
				}
				d.headDims[n] = true
			}
			sort.Ints(ns)
			strs := make([]string, len(ns))
			for i, n := range ns {
				strs[i] = strconv.Itoa(n)
			}
			d.hdList = strings.Join(strs, ",")
		case KeyDvEqualsD, KeySink:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return d, bad("want true or false")
			}
			if k == KeyDvEqualsD {
				d.dvEqD = b
			} else {
				d.noSink = !b
			}
		}
	}
	return d, nil
}

func parseDType(s string) (bundle.DType, error) {
	switch strings.ToUpper(s) {
	case "BF16":
		return bundle.BF16, nil
	case "F16", "FP16":
		return bundle.F16, nil
	case "F32", "FP32":
		return bundle.F32, nil
	case "F64", "FP64":
		return bundle.F64, nil
	case "I32", "INT32":
		return bundle.I32, nil
	case "I64", "INT64":
		return bundle.I64, nil
	}
	return "", fmt.Errorf("unknown dtype %q", s)
}

// skipReason is why the declaration excludes in ("" = it is sent). The
// reason names the declaration, not the case, so reasons add up.
func (d *decl) skipReason(in *problem.Inputs) string {
	switch {
	case d.families != nil && !d.families[in.Family]:
		return fmt.Sprintf("family %s not in families=%s", in.Family, d.famList)
	case d.maxTokens > 0 && in.T > d.maxTokens:
		return fmt.Sprintf("max_tokens=%d", d.maxTokens)
	case d.maxHeads > 0 && in.H > d.maxHeads:
		return fmt.Sprintf("max_heads=%d", d.maxHeads)
	case d.maxHD > 0 && (in.D > d.maxHD || in.Dv > d.maxHD):
		return fmt.Sprintf("max_head_dim=%d", d.maxHD)
	case d.headDims != nil && !(d.headDims[in.D] && d.headDims[in.Dv]):
		return fmt.Sprintf("head_dims=%s", d.hdList)
	case d.dvEqD && in.Dv != in.D:
		return "dv_equals_d"
	case d.noSink && in.Sink != nil:
		return "sink=false"
	case quantKind(in) != "" && !d.quant[quantKind(in)]:
		// The frames would carry F8_E4M3/I8/U8 codes and scales the worker
		// has not declared it reads.
		if d.quant == nil {
			return fmt.Sprintf("%s inputs: no quantized= declaration", quantKind(in))
		}
		return fmt.Sprintf("%s not in quantized=%s", quantKind(in), d.quantList)
	}
	return ""
}

// quantKind is the KeyQuantized value that in's dense inputs need ("":
// none).
func quantKind(in *problem.Inputs) string {
	switch {
	case in.FP8 != nil:
		return QuantFP8
	case in.Int8KV != nil:
		return QuantInt8KV
	case in.NVFP4KV != nil:
		return QuantNVFP4KV
	case in.Int4KV != nil:
		return QuantInt4KV
	}
	return ""
}

// store re-encodes the tensors of a request in their declared dtypes.
// A value the declared dtype cannot hold exactly is a skip reason (the
// case is not sent), never rounded. Quantized codes (an F8, I8 or U8
// tensor: FP8 q/k/v, INT8 or NVFP4 k/v) keep the dtype interop.Encode
// gave them: a declared dtype never converts codes, which would hand the
// worker another problem than the kernel's (the scales are not
// declarable inputs at all).
func (d *decl) store(f *bundle.File) (reason string, err error) {
	for _, name := range sortedKeys(d.dtypes) {
		dt := d.dtypes[name]
		t, ok := f.Tensors[name]
		if !ok || t.DType == dt || isCodes(t.DType) {
			continue
		}
		var nt *bundle.Tensor
		switch {
		case dt.IsFloat():
			vals, err := t.Float32s()
			if err != nil {
				return "", err
			}
			if nt, err = bundle.NewFloat32(name, dt, t.Shape, vals); err != nil {
				return fmt.Sprintf("%s not representable in %s", name, dt), nil
			}
		case dt == bundle.I64:
			vals, err := t.Int64s()
			if err != nil {
				return "", err
			}
			nt = bundle.NewInt64(name, t.Shape, vals)
		default:
			vals, err := t.Int32s()
			if err != nil {
				return "", err
			}
			nt = bundle.NewInt32(name, t.Shape, vals)
		}
		f.Add(nt)
	}
	return "", nil
}

// isCodes is whether a tensor of dtype dt holds quantized codes.
func isCodes(dt bundle.DType) bool {
	return dt == bundle.F8E4M3 || dt == bundle.F8E5M2 || dt == bundle.I8 || dt == bundle.U8
}

// SkipError is a case the worker's hello excludes (protocol v2): not
// sent, not judged, not a failure. Campaigns count it with its Reason.
type SkipError struct {
	Worker string
	Reason string // the declaration that excludes it, e.g. "max_head_dim=128"
	Case   string
}

func (e *SkipError) Error() string {
	return fmt.Sprintf("skipped by worker %s (%s): %s", e.Worker, e.Case, e.Reason)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
