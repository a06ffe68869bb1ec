package problem

import (
	"fmt"
	"math"
)

// MaxLogitConv is the declared convention of a kernel's max_logit output
// (FlashMLA's max_logits: max_j x_j over the row's keys, the scores after
// the scale and the modifiers; metadata `max_logit_base`): never guessed.
// A row with no key has max_logit −∞ in either base; the sink never
// enters it.
type MaxLogitConv struct {
	Base2 bool // max_logit_base=2: max_j x_j·log2 e (the exp2 kernels' running max); else natural
}

// Empty is the max_logit of a row with no key.
func (MaxLogitConv) Empty() float64 { return math.Inf(-1) }

// String spells the convention as its metadata value.
func (c MaxLogitConv) String() string {
	if c.Base2 {
		return "max_logit_base=2"
	}
	return "max_logit_base=e"
}

// ParseMaxLogitConv reads the metadata value max_logit_base, which must be
// given whenever a max_logit output is.
func ParseMaxLogitConv(base string) (MaxLogitConv, error) {
	switch base {
	case "e":
		return MaxLogitConv{}, nil
	case "2":
		return MaxLogitConv{Base2: true}, nil
	case "":
		return MaxLogitConv{}, fmt.Errorf("max_logit_base is required with a max_logit output: e (natural) or 2")
	}
	return MaxLogitConv{}, fmt.Errorf("max_logit_base %q: want e or 2", base)
}

// checkMaxLogit refuses a max_logit output where the family has no scores.
func (in *Inputs) checkMaxLogit() error {
	if in.MaxLogit != nil && in.Family == Combine {
		return fmt.Errorf("combine family: no max_logit output (a state merge has no scores)")
	}
	return nil
}
