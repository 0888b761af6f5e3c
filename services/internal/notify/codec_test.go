package notify

import (
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/testing/doctest"
)

// The projection store writes and reads the notifier's documents in encoding/json's bytes.
func TestTheDocumentIsTheSameBytesAndStateUnderBothJSONCodecs(t *testing.T) {
	t.Parallel()
	doctest.SameAsEncodingJSON[issue](t)
}
