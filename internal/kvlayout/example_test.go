package kvlayout_test

import (
	"fmt"

	"github.com/attnvet/attnvet/internal/kvlayout"
	"github.com/attnvet/attnvet/internal/quant"
)

// A one-page MODEL1 cache of two tokens: quantize K rows, then read slot 1
// back as FlashMLA's kernel addresses it.
func Example() {
	l := kvlayout.Model1
	k := make([]float32, 2*l.DQK())
	k[l.DQK()+0] = 3      // slot 1, NoPE column 0 (tile 0: amax 3 → inv 2^−7)
	k[l.DQK()+1] = 0.01   // rounds to e4m3 at that scale
	k[l.DQK()+448] = -1.5 // slot 1, first RoPE column (BF16)
	data, err := kvlayout.Encode(l, k, 1, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := kvlayout.NewCache(l, data, 1, 2, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	tk, _ := c.Token(1)
	row := make([]float64, l.DQK())
	_ = c.Row(row, 1, quant.Exact)
	fmt.Println(len(data), tk.Raw[0], tk.Scales[0], row[0], row[1], row[448])
	// Output: 1168 120 0.0078125 3 0.009765625 -1.5
}
