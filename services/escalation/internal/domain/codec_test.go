package domain

import (
	stdjson "encoding/json"
	"reflect"
	"testing"

	json "github.com/go-json-experiment/json/v1"
)

// The projection store encodes documents with the v1 API of encoding/json/v2's module (see
// package redisdoc): a document must read and write exactly as encoding/json has it, so that
// documents written before and after the switch are one format.
func TestADocumentIsTheSameBytesAndStateUnderBothJSONCodecs(t *testing.T) {
	t.Parallel()
	full := everyField()
	full.Calendar = nil // the store sets it after a read; it is not stored
	// Every field set, and an issue just raised, whose empty fields are left out.
	for _, orig := range []*Issue{full, {ID: "K7M3-QX9A", LastSeq: 1, Raised: true}} {
		want, err := stdjson.Marshal(orig)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(orig)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("encoded:\n%s\nencoding/json has:\n%s", got, want)
		}
		var viaStd, viaV1 Issue
		if err := stdjson.Unmarshal(want, &viaStd); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, &viaV1); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(viaV1, viaStd) {
			t.Fatalf("decoded %+v\nencoding/json decodes %+v", viaV1, viaStd)
		}
	}
}

// BenchmarkDecodeADocument compares the two codecs on a document with every field set: go test
// -bench DecodeADocument -benchmem ./services/escalation/internal/domain/.
func BenchmarkDecodeADocument(b *testing.B) {
	raw, err := stdjson.Marshal(everyField())
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		unmarshal func([]byte, any) error
	}{{"encoding-json", stdjson.Unmarshal}, {"json-v1-of-v2", func(r []byte, v any) error { return json.Unmarshal(r, v) }}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				var st Issue
				if err := c.unmarshal(raw, &st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
