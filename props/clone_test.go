package props

import (
	"reflect"
	"testing"

	"github.com/attnvet/attnvet/internal/cases"
)

// TestCloneIsDeep: every slice and pointer field of a case, set, is
// private to the clone: changing the clone's leaves the original alone.
func TestCloneIsDeep(t *testing.T) {
	var c cases.Case
	v := reflect.ValueOf(&c).Elem()
	var fields []int
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		default:
			continue
		}
		fields = append(fields, i)
	}
	if len(fields) < 10 {
		t.Fatalf("only %d slice or pointer fields found", len(fields))
	}
	d := clone(c)
	dv := reflect.ValueOf(&d).Elem()
	for _, i := range fields {
		a, b := v.Field(i), dv.Field(i)
		name := v.Type().Field(i).Name
		if a.Kind() == reflect.Slice && a.Pointer() == b.Pointer() || a.Kind() == reflect.Pointer && a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the original's memory", name)
		}
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			t.Errorf("%s: the clone differs", name)
		}
	}
}
