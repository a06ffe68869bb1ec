package cases

import (
	"testing"

	"github.com/attnvet/attnvet/internal/num"
)

// TestPlantBlockTableAfterWindowSlot pins a generator panic found by a fuzz
// campaign: the window_slot_invalid plant turned a prefix entry into a
// compressed slot id beyond the compressed block table, and the
// block_table_out_of_range plant then indexed past that table.
func TestPlantBlockTableAfterWindowSlot(t *testing.T) {
	c, err := Parse([]byte(`{"family":"sparse","seed":9930114222537080605,"h":1,"d":16,"b":1,"win":3,"idx_topk":64,"block_size":2,"seqused":[3],"indices":"shuffled","block_table":"permuted","plant":["window_slot_invalid","block_table_out_of_range"],"values":{"dist":"dominant"},"sink":{"kind":"const","value":"-inf"}}`))
	if err != nil {
		t.Fatal(err)
	}
	in, err := Generate(c, num.BF16)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Violations()) == 0 {
		t.Fatal("planted violations not reported")
	}
}
