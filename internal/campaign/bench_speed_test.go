package campaign

import (
	"encoding/json"
	"flag"
	"math"
	"os"

	"context"
	"github.com/attnvet/attnvet/internal/cases"
	"github.com/attnvet/attnvet/internal/num"
	"github.com/attnvet/attnvet/props"
	"runtime/debug"
	"testing"

	"github.com/attnvet/attnvet/internal/targets"
)

// BenchmarkFuzzCommand is what `attnvet fuzz --workers 1 --seed 1` runs
// (issue 15's side-by-side figure, scripts/fuzz_vs_torch.sh): a whole
// campaign on one worker, the default target tiled/bc128/bf16, the
// unfiltered generator, bound, GOGC=400, the results journal. One op is
// one case; cases/cpu-s is the figure compared with the torch harness.
func BenchmarkFuzzCommand(b *testing.B) {
	ts, err := targets.Select("tiled/bc128/bf16", targets.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	o := DefaultOptions()
	o.Seed, o.Cases, o.Targets, o.Workers = benchSeed, b.N, ts, 1
	o.OutDir, o.Journal = b.TempDir(), true
	b.ResetTimer()
	cpu0 := cpuSeconds()
	r, err := Run(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	if r.Cases != b.N {
		b.Fatalf("%d cases run, want %d", r.Cases, b.N)
	}
	b.ReportMetric(float64(b.N)/(cpuSeconds()-cpu0), "cases/cpu-s")
}

var (
	mixOut   = flag.String("mix-shapes", "", "TestWriteMixShapes: write the shapes of the cases `attnvet fuzz --seed 1` judges (JSON) to this file for scripts/fuzz_torch.py")
	mixCases = flag.Int("mix-cases", 3000, "TestWriteMixShapes: case indices 0..N-1")
)

// TestWriteMixShapes writes the shapes of the cases `attnvet fuzz --seed 1
// --cases N` judges, in case order: every case of props.CaseAt(1, i, "")
// whose inputs are BF16 (the default target's format) and keep the
// contract, the rare large ones included. scripts/fuzz_vs_torch.sh runs
// the torch harness on them, so both loops work on the same shapes:
//
//	go test ./internal/campaign -run WriteMixShapes -mix-shapes /tmp/mix.json
func TestWriteMixShapes(t *testing.T) {
	if *mixOut == "" {
		t.Skip("no -mix-shapes FILE")
	}
	var shapes []fuzzShape
	for i := 0; i < *mixCases; i++ {
		c := props.CaseAt(benchSeed, i, "")
		if c.Format(num.BF16) != num.BF16 {
			continue
		}
		in, err := cases.Generate(c, num.BF16)
		if err != nil || len(in.Violations()) > 0 {
			continue
		}
		sh, _ := shapeOf(in, math.MaxInt)
		shapes = append(shapes, sh)
	}
	b, err := json.Marshal(shapes)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*mixOut, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
