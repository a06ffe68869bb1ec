package problem

// ViolationsFullScan is Violations without the all-finite-tensors
// shortcut: every query row's keys are gathered and scanned.
func (in *Inputs) ViolationsFullScan() []Violation { return in.violations(true) }
