package app

import (
	"encoding/base64"
	"encoding/json"

	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
)

// cursor is what a page token carries: where the previous page ended. It is encoded so that
// callers treat it as opaque and the server may change it.
type cursor struct {
	After string `json:"after"`
}

// encodeToken makes the page token that continues after a case number; none for the last page.
func encodeToken(after string) string {
	if after == "" {
		return ""
	}
	data, _ := json.Marshal(cursor{After: after}) // a struct of one string always encodes
	return base64.RawURLEncoding.EncodeToString(data)
}

// decodeToken reads a page token; empty starts from the newest issue.
func decodeToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	data, err := base64.RawURLEncoding.DecodeString(token)
	var c cursor
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil || c.After == "" {
		return "", domain.Invalid("page_token", "not a token this server gave")
	}
	return c.After, nil
}
