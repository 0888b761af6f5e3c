// Package apiedge holds the checks every gRPC API of Whistle applies at its edge: how long an id
// a request may name, how large a page may be, what a page token is, and how a refused field
// reads. Every service asks the same of its requests, so the rules and their wording live here
// once and a caller meets the same answer from each service.
//
// The package imports no gRPC, so that a domain package may refuse a field with a FieldError
// without knowing the wire. Each service's gRPC layer maps a FieldError to codes.InvalidArgument
// with its message, in the one place where it maps every other error of that service to a code.
package apiedge

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxIDLength bounds, in characters, the ids a request names (case numbers, areas, categories,
// departments), so that a refusal never echoes a caller's megabyte back.
const MaxIDLength = 64

// Page sizes of every list call.
const (
	// DefaultPageSize is the page size of a request that asks for none (page_size 0).
	DefaultPageSize = 50
	// MaxPageSize is the largest page a caller may ask for.
	MaxPageSize = 200
)

// FieldError is a request field that fails its check. Its message names the field first, as
// "text: must be 1 to 2000 characters", so a caller knows what to fix.
type FieldError struct{ Field, Problem string }

// Error reads as the status message: the field, a colon and the problem.
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Invalid returns a *FieldError for a field, its problem formatted as by fmt.Sprintf.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// CheckID checks an id a request names before it is looked up or quoted: present when required,
// valid UTF-8, and at most MaxIDLength characters.
func CheckID(field, id string, required bool) error {
	switch {
	case id == "" && required:
		return Invalid(field, "is required")
	case utf8.RuneCountInString(id) > MaxIDLength:
		return Invalid(field, "must be at most %d characters", MaxIDLength)
	}
	return CheckUTF8(field, id)
}

// MaxRequestIDLength bounds a caller's idempotency key.
const MaxRequestIDLength = 64

// CheckRequestID checks a caller's idempotency key in field: 1 to MaxRequestIDLength of
// [A-Za-z0-9._:-], so that the key reads the same in logs, URLs and subjects.
func CheckRequestID(field, id string) error {
	if len(id) == 0 || len(id) > MaxRequestIDLength {
		return Invalid(field, "must be 1 to %d characters", MaxRequestIDLength)
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r)
		if !ok {
			return Invalid(field, "may hold only letters, digits and . _ : -; got %q", r)
		}
	}
	return nil
}

// CheckUTF8 refuses a string field that is not valid UTF-8. Every string a request carries may
// end up in an event, and protobuf refuses to encode such a string, so a request that slipped
// one past the wire's own decoding would fail only when its event is written, as an internal
// error naming nothing; checked here, the caller learns which field to fix.
func CheckUTF8(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	return nil
}

// PageSize checks a request's page_size and returns the size to use: DefaultPageSize for 0,
// the size itself from 1 to MaxPageSize.
func PageSize(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, Invalid("page_size", "must be 1 to %d, or 0 for %d", MaxPageSize, DefaultPageSize)
	}
	return n, nil
}

// EncodeToken makes the opaque page token that carries a cursor: where the page ended. Callers
// pass it back unread, so the server may change what a cursor holds. The zero cursor is the start
// of a list, which needs no token, so it encodes as the empty token. C is a small struct of
// strings and numbers, which always encodes as JSON.
func EncodeToken[C comparable](c C) string {
	var zero C
	if c == zero {
		return ""
	}
	data, _ := json.Marshal(c) // a struct of strings and numbers always encodes
	return base64.RawURLEncoding.EncodeToString(data)
}

// DecodeToken reads a page token that EncodeToken made. The empty token is the start of the list
// and gives the zero cursor. A token that does not decode, or decodes to the zero cursor (which
// EncodeToken never makes), is a FieldError naming page_token.
func DecodeToken[C comparable](token string) (C, error) {
	var c, zero C
	if token == "" {
		return zero, nil
	}
	data, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil || c == zero {
		return zero, Invalid("page_token", "not a token this server gave")
	}
	return c, nil
}
