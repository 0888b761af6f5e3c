package domain

import (
	stdjson "encoding/json"
	"reflect"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
	"github.com/whistle-dispatch/whistle/pkg/testing/doctest"
)

// The projection store encodes documents with its own codec (redisdoc.Marshal): a document must
// read and write exactly as encoding/json has it, so that documents written before and after a
// change of codec are one format.
func TestADocumentIsTheSameBytesAndStateUnderBothJSONCodecs(t *testing.T) {
	t.Parallel()
	doctest.SameAsEncodingJSON[Issue](t)
	full := everyField()
	full.Calendar = nil // the store sets it after a read; it is not stored
	// Every field set as the domain sets it, and an issue just raised, whose empty fields are left
	// out.
	for _, orig := range []*Issue{full, {ID: "K7M3-QX9A", LastSeq: 1, Raised: true}} {
		want, err := stdjson.Marshal(orig)
		if err != nil {
			t.Fatal(err)
		}
		got, err := redisdoc.Marshal(orig)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("encoded:\n%s\nencoding/json has:\n%s", got, want)
		}
		var viaStd, viaCodec Issue
		if err := stdjson.Unmarshal(want, &viaStd); err != nil {
			t.Fatal(err)
		}
		if err := redisdoc.Unmarshal(want, &viaCodec); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(viaCodec, viaStd) {
			t.Fatalf("decoded %+v\nencoding/json decodes %+v", viaCodec, viaStd)
		}
	}
}

// BenchmarkADocument compares the documents' codec with encoding/json on a document with every
// field set: go test -bench ADocument -benchmem ./services/escalation/internal/domain/.
func BenchmarkADocument(b *testing.B) {
	doc := everyField()
	doc.Calendar = nil
	raw, err := stdjson.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		marshal   func(any) ([]byte, error)
		unmarshal func([]byte, any) error
	}{{"encoding-json", stdjson.Marshal, stdjson.Unmarshal}, {"redisdoc", redisdoc.Marshal, redisdoc.Unmarshal}} {
		b.Run("encode/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.marshal(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/"+c.name, func(b *testing.B) {
			for b.Loop() {
				var st Issue
				if err := c.unmarshal(raw, &st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
