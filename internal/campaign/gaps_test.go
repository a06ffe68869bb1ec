package campaign

import (
	"math"
	"strconv"
	"testing"
	"time"
)

// gapsWithin runs Gaps with a deadline: a hostile shard count must not
// make it loop over (or allocate for) every shard.
func gapsWithin(t *testing.T, runs []RunInfo) []Gap {
	t.Helper()
	done := make(chan []Gap, 1)
	go func() { done <- Gaps(runs) }()
	select {
	case g := <-done:
		return g
	case <-time.After(3 * time.Second):
		t.Fatalf("Gaps of %d runs (shard %s) did not return in 3 s", len(runs), runs[0].Shard)
		return nil
	}
}

// A 1.3 KB campaign result claiming shard 0/2000000000 made report --merge
// list 2·10⁹ absent shards (2.1 GB RSS after 10 s, then OOM): the first
// maxListedAbsent absent shards are listed, one entry stands for the rest.
func TestGapsHugeShardCountIsBounded(t *testing.T) {
	run := RunInfo{Command: "fuzz", Seed: 1, Shard: "0/2000000000", Criterion: "bound", Targets: []string{"tiled/bc128/bf16"}}
	for _, budget := range []int{0, 4_000_000_000, math.MaxInt} {
		run.CaseBudget = budget
		gs := gapsWithin(t, []RunInfo{run})
		if len(gs) != maxListedAbsent+1 {
			t.Fatalf("budget %d: %d gaps, want %d listed and one for the rest", budget, len(gs), maxListedAbsent+1)
		}
		for i, g := range gs[:maxListedAbsent] {
			if want := strconv.Itoa(i+1) + "/2000000000"; g.Shard != want || !g.Absent || g.AbsentShards != 0 {
				t.Fatalf("budget %d: gap %d is %+v, want shard %s absent", budget, i, g, want)
			}
			if budget > 0 && (g.Cases < 1 || g.To < g.From || g.To >= budget) {
				t.Fatalf("budget %d: gap %d has cases %d, to %d", budget, i, g.Cases, g.To)
			}
		}
		rest := gs[maxListedAbsent]
		if want := 2_000_000_000 - 1 - maxListedAbsent; rest.AbsentShards != want || !rest.Absent || rest.Shard != strconv.Itoa(maxListedAbsent+1)+"/2000000000" {
			t.Fatalf("budget %d: the rest is %+v, want %d absent shards from shard %d", budget, rest, want, maxListedAbsent+1)
		}
		total := rest.Cases
		for _, g := range gs[:maxListedAbsent] {
			total += g.Cases
		}
		switch {
		case budget == 0 && rest.Cases != -1:
			t.Errorf("no budget: the rest counts %d cases, want -1 (unknown)", rest.Cases)
		case budget > 0 && total+(budget-1)/2_000_000_000+1 != budget:
			t.Errorf("budget %d: gaps count %d cases, shard 0 has %d", budget, total, (budget-1)/2_000_000_000+1)
		}
	}
}

// Fewer absent shards than the listing limit: every one listed (as
// before), in shard order, interleaved with the interrupted ones.
func TestGapsListsEachAbsentShard(t *testing.T) {
	base := RunInfo{Command: "fuzz", Seed: 7, Criterion: "bound", CaseBudget: 9000}
	a, b := base, base
	a.Shard, b.Shard = "1/5", "3/5"
	b.Missing = &Missing{From: 6003, To: 8998, Step: 5, Cases: 600}
	gs := gapsWithin(t, []RunInfo{a, b})
	want := []string{"0/5 absent", "2/5 absent", "3/5", "4/5 absent"}
	if len(gs) != len(want) {
		t.Fatalf("gaps %+v, want %v", gs, want)
	}
	for i, g := range gs {
		s := g.Shard
		if g.Absent {
			s += " absent"
		}
		if s != want[i] || g.AbsentShards != 0 || g.Cases != 1800 && g.Cases != 600 {
			t.Errorf("gap %d: %+v, want %s", i, g, want[i])
		}
	}
}
