package props

import "strings"

// The later families' properties catch the defects of their sparse and
// window forms: a dropped last key (which key that is depends on the
// order) and a −Inf sink that nudges the result.
func init() {
	for _, p := range familyProperties() {
		if strings.HasPrefix(p.Name, "key_order_") {
			defects[p.Name] = defects["key_order"]
		} else {
			defects[p.Name] = defects["sink_neg_inf"]
		}
	}
}
