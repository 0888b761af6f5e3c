package domain_test

import (
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/testing/doctest"
	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
)

// The projection store writes and reads intake's documents in encoding/json's bytes.
func TestTheDocumentIsTheSameBytesAndStateUnderBothJSONCodecs(t *testing.T) {
	t.Parallel()
	doctest.SameAsEncodingJSON[domain.Issue](t)
}
