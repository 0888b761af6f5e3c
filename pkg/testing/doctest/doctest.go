// Package doctest checks a projection's document type against the documents' codec: the codec
// (redisdoc.Marshal and redisdoc.Unmarshal) must write the bytes encoding/json writes and read
// them back to the state encoding/json reads, so that every document stored under either reads
// the same, and a view or a tool that reads the documents with encoding/json sees what was meant.
package doctest

import (
	stdjson "encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
)

// maxDepth bounds how deep Filled goes into a type that holds itself.
const maxDepth = 6

// SameAsEncodingJSON checks a document type T both as Filled makes it and empty: the codec's bytes
// must be encoding/json's, and each codec must read them back to the same state.
func SameAsEncodingJSON[T any](t testing.TB) {
	t.Helper()
	for _, doc := range []*T{Filled[T](), new(T)} {
		want, err := stdjson.Marshal(doc)
		if err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		got, err := redisdoc.Marshal(doc)
		if err != nil {
			t.Fatalf("redisdoc.Marshal: %v", err)
		}
		if string(got) != string(want) {
			t.Fatalf("redisdoc.Marshal wrote\n%s\nencoding/json writes\n%s", got, want)
		}
		viaStd, viaCodec := new(T), new(T)
		if err := stdjson.Unmarshal(want, viaStd); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if err := redisdoc.Unmarshal(want, viaCodec); err != nil {
			t.Fatalf("redisdoc.Unmarshal: %v", err)
		}
		if !reflect.DeepEqual(viaCodec, viaStd) {
			t.Fatalf("redisdoc.Unmarshal read %+v\nencoding/json reads %+v", viaCodec, viaStd)
		}
	}
}

// Filled returns a T with every exported field that JSON writes set to a value that is not zero,
// each leaf another: a slice and a map hold two elements (a map's keys inserted in the opposite
// order to the one they sort in), a pointer points to a filled value, and strings hold characters
// encoding/json escapes (HTML's, and the line separator U+2028) beside Chinese text. Interfaces and
// functions are left alone.
func Filled[T any]() *T {
	v := new(T)
	var f filler
	f.fill(reflect.ValueOf(v).Elem(), 0)
	return v
}

// filler counts the leaves it set, so that no two are the same.
type filler struct{ n int }

var (
	timeType = reflect.TypeFor[time.Time]()
	filledAt = time.Date(2026, 3, 1, 9, 30, 15, 123456789, time.FixedZone("CST", 8*3600))
)

func (f *filler) fill(v reflect.Value, depth int) {
	if depth > maxDepth {
		return
	}
	f.n++
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(filledAt.Add(time.Duration(f.n) * time.Second)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		// Counting down, so that a map's later keys sort first.
		v.SetString(fmt.Sprintf("街道 <a&b> \u2028%s-%d", v.Type().Name(), 1_000_000-f.n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.n%100 + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(f.n%100 + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(f.n) + 0.25)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			f.fill(s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			f.fill(v.Index(i), depth+1)
		}
	case reflect.Map:
		m := reflect.MakeMapWithSize(v.Type(), 2)
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			f.fill(k, depth+1)
			f.fill(e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			field := v.Type().Field(i)
			if field.IsExported() && field.Tag.Get("json") != "-" {
				f.fill(v.Field(i), depth+1)
			}
		}
	}
}
