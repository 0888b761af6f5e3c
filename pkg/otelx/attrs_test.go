package otelx_test

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/whistle-dispatch/whistle/pkg/otelx"
)

func TestAttributesBuildsEachSetOnceWithItsPairs(t *testing.T) {
	a := otelx.Attributes("consumer", "intake-3", "outcome", "applied")
	if b := otelx.Attributes("consumer", "intake-3", "outcome", "applied"); b != a {
		t.Error("the same pairs gave two options; the set must be built once and kept")
	}
	got := metric.NewAddConfig([]metric.AddOption{a}).Attributes()
	want := attribute.NewSet(attribute.String("consumer", "intake-3"), attribute.String("outcome", "applied"))
	if !got.Equals(&want) {
		t.Errorf("attributes %v, want %v", got.ToSlice(), want.ToSlice())
	}
	if other := metric.NewAddConfig([]metric.AddOption{otelx.Attributes("consumer", "intake-4", "outcome", "applied")}).Attributes(); other.Equals(&want) {
		t.Error("other pairs gave the same set")
	}
	for _, kv := range [][]string{{"odd"}, {"a", "1", "b", "2", "c", "3", "d", "4"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Attributes(%q) did not panic", kv)
				}
			}()
			otelx.Attributes(kv...)
		}()
	}
}
