package cases

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnvet/attnvet/internal/problem"
	"github.com/attnvet/attnvet/internal/safeio"
)

// TestMemoryLimit: a case inside the element limits that needs more memory
// than the limit (h=64 d=4096 t=128 hkv=1, 34.6M elements: replay died of
// OOM at 6.1 GB) is refused when parsed, naming the limit; a larger limit
// accepts it.
func TestMemoryLimit(t *testing.T) {
	big := []byte(`{"version":1,"family":"window","seed":1,"h":64,"hkv":1,"d":4096,"t":128,"values":{}}`)
	_, err := Parse(big)
	var le *safeio.LimitError
	if !errors.As(err, &le) || le.Limit != safeio.DefaultLimit || !strings.Contains(err.Error(), "--max-memory") {
		t.Fatalf("Parse: %v, want a LimitError at the default limit", err)
	}
	if le.Need < 3<<30 {
		t.Errorf("need %d: under what 33.5M output elements take (48 bytes each for the reference alone)", le.Need)
	}
	if _, err := ParseLimit(big, 8<<30); err != nil {
		t.Errorf("ParseLimit with 8 GiB: %v", err)
	}
	p := filepath.Join(t.TempDir(), "big.json")
	os.WriteFile(p, big, 0o644)
	if _, err := Load(p); !errors.As(err, &le) || !strings.HasPrefix(err.Error(), p+": ") {
		t.Errorf("Load: %v", err)
	}
	// The need grows with each dimension, and small cases are small.
	c := Case{Version: 1, Family: problem.Window, H: 4, D: 16, T: 8}
	n0 := c.MemoryNeed()
	for _, grow := range []func(*Case){func(c *Case) { c.T *= 2 }, func(c *Case) { c.H *= 2 }, func(c *Case) { c.D *= 2 }, func(c *Case) { c.Dv = 64 }} {
		g := c
		grow(&g)
		if g.MemoryNeed() <= n0 {
			t.Errorf("%+v needs %d, not more than %d", g, g.MemoryNeed(), n0)
		}
	}
	if n0 > 64<<20 {
		t.Errorf("a tiny case needs %d bytes", n0)
	}
	sp := Case{Version: 1, Family: problem.Sparse, H: 64, D: 512, B: 16, S: 64, Win: 128, IdxTopK: 256, Seqused: make([]int, 16)}
	if err := sp.Validate(); err != nil {
		t.Fatal(err)
	}
	if sp.MemoryNeed() < int64(16*64*64*512)*48 {
		t.Errorf("sparse need %d is under the reference's", sp.MemoryNeed())
	}
}
