package props

import (
	"math"
	"testing"

	"github.com/attnvet/attnvet/impl"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/problem"
)

// TestPR301Shrinks runs the differential property against PR #301's
// undefined final state at n == 1 and requires the failure to shrink to one
// token attending one key, with at most one 16-head tile.
func TestPR301Shrinks(t *testing.T) {
	var stream []impl.Config
	for _, cfg := range impl.Configs() {
		if cfg.Kind == impl.Stream {
			stream = append(stream, cfg)
		}
	}
	ch := &Checker{Configs: stream, Hooks: pr301Hooks}
	minimal := func(c cases.Case) string {
		ks := rowKeys(c)
		if c.Tokens() != 1 || len(ks) != 1 || ks[0] != 1 || c.H > 16 {
			return "want one token attending one key and H ≤ 16"
		}
		return ""
	}
	for _, fam := range []problem.Family{"", problem.Sparse, problem.Window} {
		t.Run("family="+string(fam), func(t *testing.T) {
			p, _ := PropertyByName("differential")
			p.Family = fam
			const seed = 1
			o := campaign(p, ch, seed, 200)
			if o.result.Passed() {
				t.Fatalf("the PR #301 defect passed %d cases (seed %d)", o.result.Succeeded, seed)
			}
			s := settings{seed: seed, n: 200, inject: "pr301"}
			t.Logf("%s", report(p, s, o, ""))
			if msg := minimal(o.shrunk); msg != "" {
				t.Errorf("gopter shrink: %s; got %s (keys per row %v)", msg, o.shrunk, rowKeys(o.shrunk))
			}
			if fam != "" && o.shrunk.Family != fam {
				t.Errorf("shrunk to family %s, want %s", o.shrunk.Family, fam)
			}
			calls := 0
			d := Shrink(o.orig, func(c cases.Case) bool { calls++; return ch.Check(c) != nil }, 2000)
			t.Logf("Shrink: %d evaluations from %s\nto %s", calls, o.orig, d)
			if msg := minimal(d); msg != "" {
				t.Errorf("Shrink: %s; got %s", msg, d)
			}
			if ch.Check(d) == nil {
				t.Errorf("Shrink returned a case that passes: %s", d)
			}
		})
	}
}

// defects pairs each property with a kernel defect it must catch: a
// property that cannot fail checks nothing.
var defects = map[string]func(impl.Config) *impl.Hooks{
	"differential": pr301Hooks,
	"one_key":      pr301Hooks,
	"key_order":    dropLastKey,
	// Attend each distinct key once (a "dedup" optimisation).
	"duplicate_key": func(impl.Config) *impl.Hooks {
		return &impl.Hooks{Keys: func(_ *problem.Inputs, _, _ int, keys []problem.Key) []problem.Key {
			var out []problem.Key
			for _, k := range keys {
				dup := false
				for _, u := range out {
					if &u.K[0] == &k.K[0] || equal32(u.K, k.K) && equal32(u.V, k.V) {
						dup = true
					}
				}
				if !dup {
					out = append(out, k)
				}
			}
			return out
		}}
	},
	// A sink tensor, even of −Inf, nudges the result.
	"sink_neg_inf": rowHook(func(in *problem.Inputs, _ int, pre []float32) {
		if in.Sink != nil {
			for j := range pre {
				pre[j] = float32(float64(pre[j]) * (1 + 0x1p-12))
			}
		}
	}),
	// A +Inf sink leaves the first value in place.
	"sink_pos_inf": func(impl.Config) *impl.Hooks {
		return &impl.Hooks{Row: func(in *problem.Inputs, _, h int, keys []problem.Key, pre []float32) {
			if len(keys) > 0 && math.IsInf(float64(in.SinkOf(h)), 1) {
				copy(pre, keys[0].V)
			}
		}}
	},
	// An offset that does not scale with V.
	"scale_v": rowHook(func(_ *problem.Inputs, _ int, pre []float32) {
		for j := range pre {
			pre[j] += 0.25
		}
	}),
	// Outputs overshoot the values they average.
	"range": rowHook(func(_ *problem.Inputs, _ int, pre []float32) {
		for j := range pre {
			pre[j] = pre[j]*3 + 1
		}
	}),
	// The 16-key tiles are off by 1%.
	"tile_partition": func(cfg impl.Config) *impl.Hooks {
		if cfg.Kind != impl.Tiled || cfg.Bc != 16 {
			return nil
		}
		return rowHook(func(_ *problem.Inputs, _ int, pre []float32) {
			for j := range pre {
				pre[j] *= 1.01
			}
		})(cfg)
	},
	// The paged gather loses each row's last key (a tail-page bug).
	"dense_layout": func(impl.Config) *impl.Hooks {
		return &impl.Hooks{Keys: func(in *problem.Inputs, _, _ int, keys []problem.Key) []problem.Key {
			if in.Paged() && len(keys) > 1 {
				return keys[:len(keys)-1]
			}
			return keys
		}}
	},
	"combine_state_order": dropLastKey,
	// The stream kernel drops its first key.
	"kinds_agree": func(cfg impl.Config) *impl.Hooks {
		if cfg.Kind != impl.Stream {
			return nil
		}
		return &impl.Hooks{Keys: func(_ *problem.Inputs, _, _ int, keys []problem.Key) []problem.Key {
			if len(keys) > 1 {
				return keys[1:]
			}
			return keys
		}}
	},
}

// dropLastKey drops each row's last key (state): which one that is
// depends on the order.
func dropLastKey(impl.Config) *impl.Hooks {
	return &impl.Hooks{Keys: func(_ *problem.Inputs, _, _ int, keys []problem.Key) []problem.Key {
		if len(keys) > 1 {
			return keys[:len(keys)-1]
		}
		return keys
	}}
}

func rowHook(f func(in *problem.Inputs, h int, pre []float32)) func(impl.Config) *impl.Hooks {
	return func(impl.Config) *impl.Hooks {
		return &impl.Hooks{Row: func(in *problem.Inputs, _, h int, _ []problem.Key, pre []float32) { f(in, h, pre) }}
	}
}

func equal32(a, b []float32) bool {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

// TestPropertiesCatchDefects: every property with a known defect fails on
// it within 200 cases, and shrinks.
func TestPropertiesCatchDefects(t *testing.T) {
	for _, p := range Properties() {
		hooks, ok := defects[p.Name]
		if !ok {
			continue // ref_exact and violations judge the reference and the contract, not kernels
		}
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			o := campaign(p, &Checker{Hooks: hooks}, 3, 200)
			if o.result.Passed() {
				t.Fatalf("%s passed %d cases with its defect injected", p.Name, o.result.Succeeded)
			}
			if o.err == nil {
				t.Fatalf("%s: the shrunk case passes: %s", p.Name, o.shrunk)
			}
			// Caught by the defect, not by a case the property itself refuses.
			if err := checkSafe(p, &Checker{}, o.shrunk); err != nil {
				t.Fatalf("%s: the shrunk case fails without the defect too: %v\n%s", p.Name, err, o.shrunk)
			}
			t.Logf("caught after %d cases, shrunk in %d steps to %s\n%v", o.result.Succeeded, o.result.Args[0].Shrinks, o.shrunk, o.err)
		})
	}
}
