package domain

import (
	"math"
	"net/mail"
	"net/url"
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
	case l.PlacedByAddress && (l.Latitude != 0 || l.Longitude != 0):
		return apiedge.Invalid("location.placed_by_address", "give the point or ask to be placed by the address, not both")
	case l.PlacedByAddress && strings.TrimSpace(l.Address) == "":
		return apiedge.Invalid("location.address", "required to place the issue by its address")
	}
	return apiedge.CheckUTF8("location.address", l.Address)
}

// CheckContact checks a resident's contact field by field; nil is allowed.
func CheckContact(c *Contact) error {
	if c == nil {
		return nil
	}
	for _, f := range []struct{ name, value string }{
		{"contact.first_name", c.FirstName}, {"contact.last_name", c.LastName}, {"contact.email", c.Email},
		{"contact.phone", c.Phone}, {"contact.device_id", c.DeviceID}, {"contact.account_id", c.AccountID},
	} {
		if err := apiedge.CheckUTF8(f.name, f.value); err != nil {
			return err
		}
		if utf8.RuneCountInString(f.value) > MaxContactLength {
			return apiedge.Invalid(f.name, "must be at most %d characters", MaxContactLength)
		}
	}
	if c.Email != "" {
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
			return apiedge.Invalid("contact.email", "%q is not an email address", c.Email)
		}
	}
	return nil
}

// CheckMediaURL checks the URL of an integrator's photo or video: absolute, http or https, and
// not too long; empty is allowed.
func CheckMediaURL(raw string) error {
	if raw == "" {
		return nil
	}
	if len(raw) > MaxMediaURLLength {
		return apiedge.Invalid("media_url", "must be at most %d bytes", MaxMediaURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return apiedge.Invalid("media_url", "must be an absolute http or https URL")
	}
	return nil
}
