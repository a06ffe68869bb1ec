package jsonout

import (
	"encoding/json"
	"testing"
)

type inner struct {
	Detail string `json:"detail"`
}

func (i inner) MarshalJSON() ([]byte, error) {
	return []byte(`{"detail":"a > b"}`), nil
}

func TestNoHTMLEscaping(t *testing.T) {
	v := map[string]any{"detail": "err > bound & <x>", "n": 1.5, "in": inner{}}
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"detail":"err > bound & <x>","in":{"detail":"a > b"},"n":1.5}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	ib, err := MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	std, _ := json.MarshalIndent(v, "", "  ")
	var a, c any
	if json.Unmarshal(ib, &a) != nil || json.Unmarshal(std, &c) != nil {
		t.Fatalf("not JSON: %s", ib)
	}
	if len(ib) >= len(std) || ib[len(ib)-1] != '}' {
		t.Errorf("MarshalIndent = %s (std %s): want the same without escapes and no trailing newline", ib, std)
	}
}
