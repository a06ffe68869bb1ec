package worker

import (
	"reflect"
	"testing"
)

// splits=…: the split counts a request may ask for; anything but positive
// integers is a bad hello, and splits is a protocol 2 key.
func TestDeclSplits(t *testing.T) {
	d, err := parseDecl(map[string]string{"protocol": "2", "splits": "1, 2,4"})
	if err != nil || !reflect.DeepEqual(d.splits, []int{1, 2, 4}) {
		t.Errorf("splits: %v %v", d.splits, err)
	}
	for _, bad := range []map[string]string{
		{"protocol": "2", "splits": "0"}, {"protocol": "2", "splits": "2,x"}, {"protocol": "2", "splits": ""}, {"splits": "2"},
	} {
		if _, err := parseDecl(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	w := &Worker{decl: decl{splits: []int{1, 2}}, name: "w"}
	if _, err := w.RunSplit(nil, 3); err == nil {
		t.Error("an undeclared split was sent")
	}
	if got := w.Splits(); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("Splits %v", got)
	}
}
