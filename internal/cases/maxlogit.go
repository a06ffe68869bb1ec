package cases

import (
	"fmt"

	"github.com/attnvet/attnvet/internal/problem"
)

// MaxLogitSpec is a max_logit convention, in the metadata's words
// (problem.ParseMaxLogitConv): base "e" or "2".
type MaxLogitSpec struct {
	Base string `json:"base"`
}

// Conv parses the convention.
func (s *MaxLogitSpec) Conv() (problem.MaxLogitConv, error) {
	return problem.ParseMaxLogitConv(s.Base)
}

func (c Case) validateMaxLogit() error {
	if c.MaxLogit == nil {
		return nil
	}
	if c.Family == problem.Combine {
		return fmt.Errorf("max_logit: the combine family has no scores")
	}
	_, err := c.MaxLogit.Conv()
	return err
}
