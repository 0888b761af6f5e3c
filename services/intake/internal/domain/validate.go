package domain

import (
	"math"
	"strings"
	"unicode/utf8"

	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
)

// CheckRequestID checks a caller's idempotency key (see apiedge.CheckRequestID).
func CheckRequestID(id string) error { return apiedge.CheckRequestID("request_id", id) }

// CleanText trims the raiser's text and checks its length in characters.
func CleanText(text string) (string, error) {
	if err := apiedge.CheckUTF8("text", text); err != nil {
		return "", err
	}
	text = strings.TrimSpace(text)
	if n := utf8.RuneCountInString(text); n == 0 || n > MaxTextLength {
		return "", apiedge.Invalid("text", "must be 1 to %d characters", MaxTextLength)
	}
	return text, nil
}

// CheckLocation checks coordinates and the address length; a nil location is allowed.
func CheckLocation(l *Location) error {
	switch {
	case l == nil:
		return nil
	case math.IsNaN(l.Latitude) || l.Latitude < -90 || l.Latitude > 90:
		return apiedge.Invalid("location.latitude", "must be between -90 and 90")
	case math.IsNaN(l.Longitude) || l.Longitude < -180 || l.Longitude > 180:
		return apiedge.Invalid("location.longitude", "must be between -180 and 180")
	case utf8.RuneCountInString(l.Address) > MaxAddressLength:
		return apiedge.Invalid("location.address", "must be at most %d characters", MaxAddressLength)
	}
	return apiedge.CheckUTF8("location.address", l.Address)
}
