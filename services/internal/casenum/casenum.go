// Package casenum makes and checks case numbers: the short ids that people read out on the phone.
//
// A case number is eight characters of Crockford's base 32 (no I, L, O or U, so nothing is
// mistaken when spoken), written as two groups of four: "K7M3-QX9A". It is derived from a hash of
// the raise's idempotency key, so a retried raise always names the same issue.
package casenum

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Length is the number of significant characters in a case number.
const Length = 8

// FromKey derives the case number for an idempotency key.
func FromKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	v := binary.BigEndian.Uint64(sum[:8])
	var b strings.Builder
	for i := range Length {
		if i == 4 {
			b.WriteByte('-')
		}
		b.WriteByte(alphabet[v>>(64-5*(i+1))&31])
	}
	return b.String()
}

// Normalize reads a case number as a person may type it (any case, with or without the hyphen,
// O for 0, I or L for 1) and returns its canonical form, or an error saying what is wrong.
func Normalize(s string) (string, error) {
	clean := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", ""))
	if len(clean) != Length {
		return "", fmt.Errorf("a case number has %d characters, like K7M3-QX9A; got %d", Length, len(clean))
	}
	var b strings.Builder
	for i, r := range clean {
		switch r {
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if !strings.ContainsRune(alphabet, r) {
			return "", fmt.Errorf("a case number has no %q; got %q", r, clean)
		}
		if i == 4 {
			b.WriteByte('-')
		}
		b.WriteRune(r)
	}
	return b.String(), nil
}
