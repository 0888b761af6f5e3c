package otelx

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// maxAttributePairs is how many key-value pairs Attributes takes.
const maxAttributePairs = 3

// attributeSets holds the measurement option of every attribute set Attributes has built.
var attributeSets sync.Map // [2 * maxAttributePairs]string -> metric.MeasurementOption

// Attributes returns the measurement option of the attribute set of up to three string
// attributes given as key, value, key, value...: built the first time a list is asked for and kept,
// so that a counter or histogram recorded on every event or call builds no set (sorting and
// allocating one costs more than the recording). It panics on an odd count or more than three
// pairs, a mistake in the caller's code.
func Attributes(kv ...string) metric.MeasurementOption {
	if len(kv)%2 != 0 || len(kv) > 2*maxAttributePairs {
		panic("otelx.Attributes: want up to three key-value pairs")
	}
	var key [2 * maxAttributePairs]string
	copy(key[:], kv)
	if o, ok := attributeSets.Load(key); ok {
		return o.(metric.MeasurementOption)
	}
	attrs := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	o, _ := attributeSets.LoadOrStore(key, metric.WithAttributeSet(attribute.NewSet(attrs...)))
	return o.(metric.MeasurementOption)
}
