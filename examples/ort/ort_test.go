// Package ort_test drives ONNX Runtime's CPU attention kernels (through
// examples/ort/worker.js and the npm package onnxruntime-node) with
// `attnvet fuzz` and `attnvet gate`, and requires every failure the bound
// reports to be one of the ORT defects documented in docs/interop.md
// ("ONNX Runtime"), re-checked element by element; any other failure is a
// false alarm of attnvet's, or a defect nobody has documented, and fails
// the test. Each documented defect must also show up.
package ort_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/x448/float16"

	"github.com/attnvet/attnvet/internal/campaign"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/targets"
	"github.com/attnvet/attnvet/internal/tolerance"
)

// A defect explains a failing output row (token t, head h) of a case.
type defect struct {
	id      string
	explain func(in *problem.Inputs, t, h int, fp16 bool) bool
}

// gqa-sink-posinf: GroupQueryAttention with head_sink[h] = +Inf returns
// NaN for head h (the exact o is 0): MLAS's smooth softmax takes the sink
// as the row maximum and adds exp(sink − max) = exp(+Inf − Inf) = NaN.
var gqaSinkPosInf = defect{"gqa-sink-posinf", func(in *problem.Inputs, t, h int, _ bool) bool {
	return in.Sink != nil && math.IsInf(float64(in.Sink[h]), 1)
}}

// maskedScores calls f with the visible maximum of row (t, h) and each
// hidden key's score scale·(q·k) as ORT's sgemm gets it (the dot product in
// fp32, then the scale; NaN when Σ|q_d k_d| reaches the fp32 maximum, so
// that some summation order may overflow), and stops when f says so. The
// hidden keys are those outside the window (earlier or future), or every
// real key under a +Inf sink (the worker's sink key then has score 0).
func maskedScores(in *problem.Inputs, t, h int, f func(vmax float64, s float32) bool) bool {
	kh := h / (in.H / in.Hkv)
	sc := float64(float32(in.Scale))
	score := func(j int) float32 {
		s, a := 0.0, 0.0
		for d := 0; d < in.D; d++ {
			p := float64(in.Q[(t*in.H+h)*in.D+d]) * float64(in.K[(j*in.Hkv+kh)*in.D+d])
			s, a = s+p, a+math.Abs(p)
		}
		if a >= math.MaxFloat32 {
			return float32(math.NaN())
		}
		return float32(sc * float64(float32(s)))
	}
	lo := 0
	if in.W > 0 {
		lo = max(0, t-in.W+1)
	}
	sinkInf := in.Sink != nil && math.IsInf(float64(in.Sink[h]), 1)
	vmax := math.Inf(-1)
	if sinkInf {
		vmax = 0
	} else {
		for j := lo; j <= t; j++ {
			vmax = math.Max(vmax, float64(score(j)))
		}
		if in.Sink != nil && !math.IsInf(float64(in.Sink[h]), -1) {
			vmax = math.Max(vmax, float64(in.Sink[h]))
		}
	}
	for j := 0; j < in.T; j++ {
		if (sinkInf || j < lo || j > t) && f(vmax, score(j)) {
			return true
		}
	}
	return false
}

// floatMask reports whether the worker sends this case with a float mask
// (a sink other than −∞: hidden keys −∞) rather than a boolean one.
func floatMask(in *problem.Inputs) bool {
	for _, s := range in.Sink {
		if !math.IsInf(float64(s), -1) {
			return true
		}
	}
	return false
}

// attention-bool-mask-lowest: ORT turns a false entry of a boolean
// attn_mask (and is_causal) into adding the lowest finite value of the
// dtype, not −∞, so a hidden key whose score is large keeps weight: in
// fp16, above about the visible maximum + 65504 (or it rounds to +Inf and
// the row is NaN). A row is explained when, in ORT's arithmetic, a hidden
// key's masked score is not negligible next to the visible maximum.
var attentionBoolMaskLowest = defect{"attention-bool-mask-lowest", func(in *problem.Inputs, t, h int, fp16 bool) bool {
	if floatMask(in) {
		return false
	}
	return maskedScores(in, t, h, func(vmax float64, s float32) bool {
		if math.IsNaN(float64(s)) {
			return false // a possible overflow: attention-masked-overflow-nan
		}
		if fp16 {
			m := float64(float16.Fromfloat32(s + -65504).Float32())
			return math.IsInf(m, 1) || m >= vmax-40 // e^-40·65504 is far below half an fp16 subnormal
		}
		m := float64(s + -math.MaxFloat32)
		return m >= vmax-200 // e^-200·max float32 is below half an fp32 subnormal
	})
}}

// attention-masked-overflow-nan: a hidden key whose score overflows fp32
// to +Inf makes the row NaN, whatever the mask: +Inf + lowest = +Inf, and
// +Inf + (−∞) = NaN (the ONNX reference implementation's own −∞ mask does
// the same). ORT computes hidden keys' scores instead of skipping them.
var attentionMaskedOverflow = defect{"attention-masked-overflow-nan", func(in *problem.Inputs, t, h int, fp16 bool) bool {
	return !fp16 && maskedScores(in, t, h, func(_ float64, s float32) bool { return math.IsNaN(float64(s)) })
}}

type config struct {
	op, dtype string
	naive     bool
	defects   []defect // what may explain a failure
	mustShow  []string // defect ids the test's runs must find
	// signatures are the findings' signatures the fuzz run must show
	// (all of them in knownFile): one per documented defect, the two
	// Attention defects sharing one (both are gross: a hidden key's
	// score taking part).
	signatures []string
	// seed and case budget of the fuzz run: chosen so that each defect
	// shows, and the whole test stays near a minute.
	seed, cases, gateCases int
}

func (c config) name() string {
	n := c.op + "-" + c.dtype
	if c.naive {
		n += "-naive"
	}
	return n
}

var configs = []config{
	{op: "gqa", dtype: "fp32", defects: []defect{gqaSinkPosInf}, mustShow: []string{"gqa-sink-posinf"}, signatures: []string{"gross o window -"}, seed: 1, cases: 450, gateCases: 60},
	{op: "gqa", dtype: "fp16", defects: []defect{gqaSinkPosInf}, mustShow: []string{"gqa-sink-posinf"}, signatures: []string{"gross o window -"}, seed: 1, cases: 450, gateCases: 60},
	// fp32: the lowest-value leak needs a hidden score within 200 of the fp32
	// maximum without overflowing; it may explain a row but is not required.
	{op: "attention", dtype: "fp32", defects: []defect{attentionMaskedOverflow, attentionBoolMaskLowest},
		mustShow: []string{"attention-masked-overflow-nan"}, signatures: []string{"gross o window -"}, seed: 2, cases: 450, gateCases: 60},
	{op: "attention", dtype: "fp16", defects: []defect{attentionBoolMaskLowest},
		mustShow: []string{"attention-bool-mask-lowest"}, signatures: []string{"gross o window -"}, seed: 2, cases: 450, gateCases: 60},
}

// refusal is the v1 worker's answer to a sink fp16 cannot hold (both
// operators take the sink in the model's dtype); under protocol v2 such
// cases are skipped instead of sent.
const refusal = "is not representable in fp16"

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// need skips (or, in CI, fails) the test when node or onnxruntime-node is missing.
func need(t *testing.T, root string) string {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s (.ci/run installs onnxruntime-node 1.30.0 into .ort/)", what)
		}
		t.Skip(what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("no node on PATH")
	}
	dir := os.Getenv("ATTNVET_ORT_DIR")
	if dir == "" {
		dir = filepath.Join(root, ".ort")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "onnxruntime-node", "package.json")); err != nil {
		missing("onnxruntime-node is not installed in " + dir)
	}
	return node
}

func buildAttnvet(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "attnvet")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/attnvet")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/attnvet: %v\n%s", err, out)
	}
	return bin
}

// run runs attnvet, which exits 0 (pass, or every failure known) or 1
// (failures found), and returns the exit code; anything else is an error
// of the run itself.
func run(t *testing.T, bin string, args ...string) int {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return 1
	}
	if err != nil {
		t.Fatalf("attnvet %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return 0
}

// knownFile lists the signatures (docs/json.md, "Findings") of the
// documented ORT defects: the CI runs pass --known with it, so that a
// failure of any other signature fails the run (exit 1).
const knownFile = "testdata/known.txt"

// checkFindings requires every finding of r to be known and every
// signature of cfg.signatures to be among them: the run shows exactly the
// documented defects' signatures.
func checkFindings(t *testing.T, cfg config, r *campaign.Result, what string, code int) {
	t.Helper()
	seen := map[string]int{}
	for _, f := range r.Findings {
		seen[f.Signature] += f.Count
		if !f.Known {
			ex := "?"
			if f.Example != nil {
				ex = f.Example.Case
			} else if f.WorkerExample != nil {
				ex = f.WorkerExample.Case
			}
			t.Errorf("%s: NEW signature %q (%d failures, example %s): not a documented ORT defect", what, f.Signature, f.Count, ex)
		}
	}
	if code != 0 && r.Complete {
		t.Errorf("%s: attnvet exited %d with --known %s: a failure of a signature not listed", what, code, knownFile)
	}
	if what == "fuzz" {
		for _, s := range cfg.signatures {
			if seen[s] == 0 {
				t.Errorf("%s: documented signature %q did not show (findings %v)", what, s, seen)
			}
		}
	}
}

func readResult(t *testing.T, path string) *campaign.Result {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r campaign.Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &r
}

// exceeds mirrors the bound criterion's element check.
func exceeds(out float32, r, allowed float64) bool {
	o := float64(out)
	on, rn, oi, ri := math.IsNaN(o), math.IsNaN(r), math.IsInf(o, 0), math.IsInf(r, 0)
	if on || rn || oi || ri {
		return !((on && rn) || (oi && ri && o == r))
	}
	return math.Abs(o-r) > allowed
}

// tally counts what a run showed.
type tally struct {
	cases, checks, numerical, refused, skipped int
	found                                      map[string]int // defect id → failing cases it explains
	seconds                                    float64
}

// classify re-runs each failing case through its own worker process and
// requires every element beyond its allowance to lie in a row one of the
// config's defects explains.
func classify(t *testing.T, cfg config, tg targets.Target, r *campaign.Result, what string, tl *tally) {
	t.Helper()
	fp16 := cfg.dtype == "fp16"
	if r.FailuresOmitted > 0 {
		// More failures than the documented defects give at this budget.
		defer t.Errorf("%s: %d failures not listed in the JSON, so not classified (the listed ones are above)", what, r.FailuresOmitted)
	}
	for _, w := range r.WorkerFailures {
		if fp16 && w.Kind == "reported" && strings.Contains(w.Error, refusal) {
			tl.refused++
			continue
		}
		t.Errorf("%s: unexpected worker failure on %s: %s", what, w.Case, w.Error)
	}
	for _, f := range r.Failures {
		d, err := campaign.Check(f.Input, tg, tolerance.BoundCriterion{Mode: tolerance.Rigorous})
		if err != nil {
			t.Fatalf("%s: %s: %v", what, f.Case, err)
		}
		if d.Status != campaign.Fail || d.Err != nil {
			t.Errorf("%s: %s failed in the run but gives %v (err %v) on a re-run: ORT is not deterministic here", what, f.Case, d.Status, d.Err)
			continue
		}
		x := &tolerance.Input{In: d.Inputs, Ref: d.Ref, Out: d.Out.O, Profile: tg.Kernel.Profile(), Shape: tg.Shape}
		allowed, _, skip := tolerance.Bounds(x, tolerance.Rigorous)
		in := d.Inputs
		hit := map[string]bool{}
		bad := 0
		for e, ref := range d.Ref.O {
			if skip[e] || !exceeds(x.Out[e], ref, allowed[e]) {
				continue
			}
			row := e / in.Dv
			tt, hh := row/in.H, row%in.H
			ok := false
			for _, df := range cfg.defects {
				if df.explain(in, tt, hh, fp16) {
					hit[df.id], ok = true, true
					break
				}
			}
			if !ok {
				bad++
				if bad <= 3 {
					t.Errorf("%s: FALSE ALARM or undocumented defect: %s element (t %d, h %d, j %d): ref %g, ORT %g, allowed %g; case %s",
						what, f.Case, tt, hh, e%in.Dv, ref, x.Out[e], allowed[e], caseJSON(f.Input))
				}
			}
		}
		for id := range hit {
			tl.found[id]++
		}
		tl.numerical++
	}
	tl.cases += r.Cases
	tl.checks += r.Checks
	tl.skipped += r.IncompatibleChecks
}

func caseJSON(c cases.Case) string {
	b, _ := json.Marshal(c)
	return string(b)
}

func TestORTWorkersFuzzAndGate(t *testing.T) {
	if os.Getenv("ATTNVET_LONG") == "" {
		t.Skip("the ORT campaigns (about a minute) run with ATTNVET_LONG=1, CI's long step")
	}
	root := repoRoot(t)
	node := need(t, root)
	bin := buildAttnvet(t, root)
	worker := filepath.Join(root, "examples", "ort", "worker.js")
	// gate's corpus: the window family's cases (the workers do only that family).
	corpus := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(root, "corpus", "window*.json"))
	if len(files) == 0 {
		t.Fatal("no corpus/window*.json")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(corpus, filepath.Base(f)), b, 0o644)
	}
	for _, cfg := range configs {
		t.Run(cfg.name(), func(t *testing.T) {
			cmd := fmt.Sprintf("%s %s --op %s --dtype %s", node, worker, cfg.op, cfg.dtype)
			if cfg.naive {
				cmd += " --naive"
			}
			target := "exec:" + cmd
			dir := t.TempDir()
			tl := &tally{found: map[string]int{}}
			start := time.Now()
			known, err := filepath.Abs(knownFile)
			if err != nil {
				t.Fatal(err)
			}
			fuzzCode := run(t, bin, "fuzz", "--family", "window", "--seed", fmt.Sprint(cfg.seed), "--cases", fmt.Sprint(cfg.cases),
				"--target", target, "--save", "0", "--out", filepath.Join(dir, "fuzz"), "--json", filepath.Join(dir, "fuzz.json"),
				"--progress", "0", "--known", known)
			gateCode := run(t, bin, "gate", "--corpus", corpus, "--family", "window", "--seed", fmt.Sprint(cfg.seed+100),
				"--cases", fmt.Sprint(cfg.gateCases), "--kernels", target,
				"--out", filepath.Join(dir, "gate"), "--json", filepath.Join(dir, "gate.json"), "--known", known)
			tl.seconds = time.Since(start).Seconds()

			tg, err := targets.Resolve(target, targets.Options{CaseTimeout: time.Minute, Logf: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			fr, gr := readResult(t, filepath.Join(dir, "fuzz.json")), readResult(t, filepath.Join(dir, "gate.json"))
			checkFindings(t, cfg, fr, "fuzz", fuzzCode)
			checkFindings(t, cfg, gr, "gate", gateCode)
			classify(t, cfg, tg, fr, "fuzz", tl)
			classify(t, cfg, tg, gr, "gate", tl)
			for _, id := range cfg.mustShow {
				if tl.found[id] == 0 {
					t.Errorf("defect %s did not show in %d cases: ORT changed, or the worker no longer reaches it (docs/interop.md)", id, tl.cases)
				}
			}
			t.Logf("%s: %d cases, %d judged, %d failing (all documented: %v), %d refused (fp16 sink), %d not sent (dtype); fuzz+gate %.1fs, %.0f cases/s",
				cfg.name(), tl.cases, tl.checks, tl.numerical, tl.found, tl.refused, tl.skipped, tl.seconds, float64(tl.cases)/tl.seconds)
		})
	}
}

// TestORTPinnedDefects replays the shrunk case of each documented defect
// (testdata/) and requires ORT's documented answer: the exact o and what
// ORT returns are in docs/interop.md.
func TestORTPinnedDefects(t *testing.T) {
	root := repoRoot(t)
	node := need(t, root)
	worker := filepath.Join(root, "examples", "ort", "worker.js")
	for _, p := range pinned {
		t.Run(p.op+"-"+p.dtype+"/"+p.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", p.file))
			if err != nil {
				t.Fatal(err)
			}
			var c cases.Case
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			tg, err := targets.Resolve(fmt.Sprintf("exec:%s %s --op %s --dtype %s", node, worker, p.op, p.dtype), targets.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			d, err := campaign.Check(c, tg, tolerance.BoundCriterion{Mode: tolerance.Rigorous})
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != campaign.Fail || d.Err != nil {
				t.Fatalf("status %v, err %v: the pinned defect no longer reproduces (ORT fixed? update docs/interop.md)", d.Status, d.Err)
			}
			e := p.elem
			got, want := d.Out.O[e], d.Ref.O[e]
			if math.Abs(want-p.exact) > 1e-7*math.Abs(p.exact) {
				t.Errorf("exact o[%d] = %v, docs say %v", e, want, p.exact)
			}
			if !(math.IsNaN(p.ort) && math.IsNaN(float64(got))) && float64(got) != p.ort {
				t.Errorf("ORT o[%d] = %v, docs say %v", e, got, p.ort)
			}
			if !p.df.explain(d.Inputs, e/d.Inputs.Dv/d.Inputs.H, (e/d.Inputs.Dv)%d.Inputs.H, p.dtype == "fp16") {
				t.Errorf("%s does not explain its own pinned case", p.df.id)
			}
		})
	}
}

// pinned are the shrunk cases of the documented defects (testdata/), with
// the element docs/interop.md quotes: the exact o and ORT's.
var pinned = []struct {
	file, op, dtype string
	df              defect
	elem            int
	exact, ort      float64
}{
	{"gqa_sink_posinf.json", "gqa", "fp32", gqaSinkPosInf, 0, 0, math.NaN()},
	{"gqa_sink_posinf.json", "gqa", "fp16", gqaSinkPosInf, 0, 0, math.NaN()},
	{"attention_fp32_masked_key_inf.json", "attention", "fp32", attentionMaskedOverflow, 1, -0.76824784, math.NaN()},
	{"attention_fp16_masked_key_leak.json", "attention", "fp16", attentionBoolMaskLowest, 2, -1.7490234, 0.388427734375},
}

// TestORTClassify classifies the failures of campaign results made
// elsewhere (a longer fuzz run, say) the way the CI test does:
//
//	ATTNVET_ORT_CLASSIFY='fuzz.json=gqa:fp16 other.json=attention:fp32' go test ./examples/ort -run Classify -v
//
// Without the variable it is skipped. Only the failures a result lists
// (the first 100) are re-checked.
func TestORTClassify(t *testing.T) {
	spec := os.Getenv("ATTNVET_ORT_CLASSIFY")
	if spec == "" {
		t.Skip("ATTNVET_ORT_CLASSIFY not set")
	}
	root := repoRoot(t)
	node := need(t, root)
	worker := filepath.Join(root, "examples", "ort", "worker.js")
	for _, item := range strings.Fields(spec) {
		file, cfgName, _ := strings.Cut(item, "=")
		op, dtype, _ := strings.Cut(cfgName, ":")
		naive := strings.HasSuffix(dtype, ":naive")
		dtype = strings.TrimSuffix(dtype, ":naive")
		var cfg config
		for _, c := range configs {
			if c.op == op && c.dtype == dtype {
				cfg = c
			}
		}
		cfg.naive = naive
		t.Run(filepath.Base(file), func(t *testing.T) {
			cmd := fmt.Sprintf("%s %s --op %s --dtype %s", node, worker, op, dtype)
			if naive {
				cmd += " --naive"
			}
			tg, err := targets.Resolve("exec:"+cmd, targets.Options{CaseTimeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			r := readResult(t, file)
			omitted := r.FailuresOmitted
			r.FailuresOmitted = 0
			tl := &tally{found: map[string]int{}}
			classify(t, cfg, tg, r, file, tl)
			t.Logf("%s: %d cases, %d judged; %d listed failures classified (%d more not listed): %v; %d fp16-sink refusals listed",
				file, tl.cases, tl.checks, tl.numerical, omitted, tl.found, tl.refused)
		})
	}
}

// hello sends one hello frame (docs/worker.md) and returns the reply's metadata.
func hello(t *testing.T, node, worker string, meta map[string]string, args ...string) map[string]string {
	t.Helper()
	cmd := exec.Command(node, append([]string{worker}, args...)...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	hdr, _ := json.Marshal(map[string]any{"__metadata__": meta})
	frame := binary.LittleEndian.AppendUint64(nil, uint64(8+len(hdr)))
	frame = binary.LittleEndian.AppendUint64(frame, uint64(len(hdr)))
	if _, err := stdin.Write(append(frame, hdr...)); err != nil {
		t.Fatal(err)
	}
	var n [8]byte
	if _, err := io.ReadFull(stdout, n[:]); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, binary.LittleEndian.Uint64(n[:]))
	if _, err := io.ReadFull(stdout, payload); err != nil {
		t.Fatal(err)
	}
	h := binary.LittleEndian.Uint64(payload)
	var reply struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(payload[8:8+h], &reply); err != nil {
		t.Fatal(err)
	}
	return reply.Meta
}

// TestORTWorkerHello: a v1 hello gets a v1 answer (the profile only); a
// hello offering protocol v2 gets the v2 declarations, the sink in the
// operator's dtype.
func TestORTWorkerHello(t *testing.T) {
	root := repoRoot(t)
	node := need(t, root)
	worker := filepath.Join(root, "examples", "ort", "worker.js")
	v1 := hello(t, node, worker, map[string]string{"request": "hello", "protocol": "1"}, "--op", "gqa", "--dtype", "fp16")
	if v1["protocol"] != "" || v1["dtype.attn_sink"] != "" || v1["score_dtype"] != "fp32" || v1["p_dtype"] != "fp32" || v1["in_dtype"] != "fp16" {
		t.Errorf("v1 hello of gqa fp16: %v", v1)
	}
	v2 := hello(t, node, worker, map[string]string{"request": "hello", "protocol": "1", "protocol_max": "2"}, "--op", "attention", "--dtype", "fp16")
	want := map[string]string{"protocol": "2", "families": "window", "max_inflight": "2", "dtype.q": "F16", "dtype.attn_sink": "F16", "score_dtype": "fp16", "p_dtype": "fp16"}
	for k, v := range want {
		if v2[k] != v {
			t.Errorf("v2 hello of attention fp16: %s = %q, want %q (%v)", k, v2[k], v, v2)
		}
	}
	if v := hello(t, node, worker, map[string]string{"request": "hello", "protocol": "1", "protocol_max": "2"}, "--op", "gqa", "--dtype", "fp32"); v["profile"] != "fp32" || v["dtype.attn_sink"] != "F32" {
		t.Errorf("v2 hello of gqa fp32: %v", v)
	}
}
