package interop

import (
	"fmt"
	"strings"

	"github.com/attnvet/attnvet/internal/bundle"
	"github.com/attnvet/attnvet/internal/problem"
)

// KeyLayout names the layout of q, k, v and the output: `thd` ([T, H, D],
// the window and sparse default), `bshd` ([B, S, H, D], FlashAttention's,
// the dense default for 4-D tensors) or `bhsd` ([B, H, S, D], torch SDPA's).
const KeyLayout = "layout"

// layoutTensors are the tensors a layout applies to.
var layoutTensors = []string{TQ, TK, TV, TO, TOut}

// withLayout returns f with the layout-bearing tensors in attnvet's order:
// bhsd is transposed to bshd; for the window family (one sequence) a 4-D
// tensor of batch 1 becomes [S, H, D]. Errors name the tensor and the
// layout assumed.
func withLayout(f *bundle.File, meta map[string]string, fam problem.Family) (*bundle.File, error) {
	l, ok := meta[KeyLayout]
	if !ok {
		return f, nil
	}
	l = strings.ToLower(strings.TrimSpace(l))
	switch l {
	case "thd", "bshd", "bhsd":
	default:
		return nil, metaErr(KeyLayout, "%q, want thd ([T, H, D]), bshd ([B, S, H, D]) or bhsd ([B, H, S, D])", l)
	}
	fc, err := codecOf(fam)
	if err != nil {
		return nil, err
	}
	if !fc.layout {
		return nil, metaErr(KeyLayout, "applies to the window and dense families (the %s family has its own tensor shapes)", fam)
	}
	oneSeq := fc.oneSeq
	g := &bundle.File{Tensors: map[string]*bundle.Tensor{}, Order: f.Order, Metadata: f.Metadata}
	for n, t := range f.Tensors {
		g.Tensors[n] = t
	}
	for _, n := range layoutTensors {
		t := g.Tensors[n]
		if t == nil {
			continue
		}
		want := map[string]int{"thd": 3, "bshd": 4, "bhsd": 4}[l]
		if len(t.Shape) != want {
			return nil, fmt.Errorf("tensor %s: shape %v, but layout %s says rank %d", n, t.Shape, l, want)
		}
		if err := t.Validate(); err != nil {
			return nil, err
		}
		c := *t
		if l == "bhsd" {
			c.Data, c.Shape = transposeBHSD(t), []int{t.Shape[0], t.Shape[2], t.Shape[1], t.Shape[3]}
		}
		if oneSeq && len(c.Shape) == 4 {
			if c.Shape[0] != 1 {
				return nil, fmt.Errorf("tensor %s: shape %v in layout %s has batch %d; the window family is one sequence (family dense takes batches)", n, t.Shape, l, c.Shape[0])
			}
			c.Shape = c.Shape[1:]
		}
		g.Tensors[n] = &c
	}
	return g, nil
}

// transposeBHSD reorders a [B, H, S, D] tensor's bytes to [B, S, H, D].
func transposeBHSD(t *bundle.Tensor) []byte {
	b, h, s, d := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	row := d * t.DType.ItemSize()
	out := make([]byte, len(t.Data))
	for bi := 0; bi < b; bi++ {
		for hi := 0; hi < h; hi++ {
			for si := 0; si < s; si++ {
				src := ((bi*h+hi)*s + si) * row
				dst := ((bi*s+si)*h + hi) * row
				copy(out[dst:dst+row], t.Data[src:src+row])
			}
		}
	}
	return out
}
