// Package jsonfloat encodes float64 values in JSON, where a number cannot
// be ±Inf or NaN: those travel as the strings "+inf", "-inf" and "nan"
// ("inf" is read as "+inf"). Every finite value round-trips exactly.
package jsonfloat

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Marshal encodes x.
func Marshal(x float64) []byte {
	switch {
	case math.IsInf(x, 1):
		return []byte(`"+inf"`)
	case math.IsInf(x, -1):
		return []byte(`"-inf"`)
	case math.IsNaN(x):
		return []byte(`"nan"`)
	}
	return strconv.AppendFloat(nil, x, 'g', -1, 64)
}

// Unmarshal decodes a number or one of the strings Marshal writes.
func Unmarshal(b []byte) (float64, error) {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return 0, err
		}
		switch s {
		case "+inf", "inf":
			return math.Inf(1), nil
		case "-inf":
			return math.Inf(-1), nil
		case "nan":
			return math.NaN(), nil
		}
		return 0, fmt.Errorf("bad float %q (want a number, +inf, -inf or nan)", s)
	}
	var x float64
	if err := json.Unmarshal(b, &x); err != nil {
		return 0, fmt.Errorf("bad float %q", b)
	}
	return x, nil
}
