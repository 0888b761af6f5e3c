package apiedge

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// cursor is a cursor as a service's list keeps one.
type cursor struct {
	Millis int64  `json:"t"`
	ID     string `json:"i"`
}

func TestARefusedFieldReadsAsTheFieldAndItsProblemThroughWrapping(t *testing.T) {
	err := fmt.Errorf("issue K7M3-QX9A: %w", Invalid("note", "must be 1 to %d characters", 2000))
	fe, ok := errors.AsType[*FieldError](err)
	if !ok || fe.Field != "note" || fe.Error() != "note: must be 1 to 2000 characters" {
		t.Fatalf("got %#v, %v; want the note's FieldError with its message", fe, ok)
	}
}

func TestIDsAreCheckedForPresenceAndLengthInCharacters(t *testing.T) {
	tests := []struct {
		name     string
		id       string
		required bool
		want     string // the error's message; empty for none
	}{
		{"a short id passes", "xinhua-taoyuan-01", true, ""},
		{"an empty optional id passes", "", false, ""},
		{"an empty required id is refused", "", true, "grid_id: is required"},
		{"an id of the longest length passes", strings.Repeat("a", MaxIDLength), true, ""},
		{"an id one character too long is refused", strings.Repeat("a", MaxIDLength+1), false, "grid_id: must be at most 64 characters"},
		{"characters count, not bytes", strings.Repeat("水", MaxIDLength), true, ""},
		{"a megabyte id is refused without an echo", strings.Repeat("a", 1<<20), true, "grid_id: must be at most 64 characters"},
		{"an id that is not UTF-8 is refused", "xinhua-\xff", true, "grid_id: must be valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckID("grid_id", tt.id, tt.required)
			if got := errorMessage(err); got != tt.want {
				t.Fatalf("CheckID = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestPageSizeZeroMeansTheDefaultAndOnlyOneToTheMaximumIsTakenAsGiven(t *testing.T) {
	const refused = "page_size: must be 1 to 200, or 0 for 50"
	tests := []struct {
		in, want int
		err      string
	}{
		{0, DefaultPageSize, ""},
		{1, 1, ""},
		{MaxPageSize, MaxPageSize, ""},
		{MaxPageSize + 1, 0, refused},
		{-1, 0, refused},
	}
	for _, tt := range tests {
		got, err := PageSize(tt.in)
		if got != tt.want || errorMessage(err) != tt.err {
			t.Errorf("PageSize(%d) = %d, %q; want %d, %q", tt.in, got, errorMessage(err), tt.want, tt.err)
		}
	}
}

func TestAPageTokenCarriesItsCursorBack(t *testing.T) {
	want := cursor{Millis: 1767225600000, ID: "K7M3-QX9A"}
	token := EncodeToken(want)
	if token == "" || strings.Contains(token, "K7M3") {
		t.Fatalf("EncodeToken = %q; want an opaque token", token)
	}
	got, err := DecodeToken[cursor](token)
	if err != nil || got != want {
		t.Fatalf("DecodeToken(%q) = %+v, %v; want %+v", token, got, err, want)
	}
}

func TestTheStartOfAListIsTheEmptyToken(t *testing.T) {
	if token := EncodeToken(cursor{}); token != "" {
		t.Fatalf("EncodeToken(zero) = %q; want the empty token", token)
	}
	if c, err := DecodeToken[cursor](""); err != nil || c != (cursor{}) {
		t.Fatalf(`DecodeToken("") = %+v, %v; want the zero cursor`, c, err)
	}
}

func TestATokenThisServerDidNotGiveIsRefusedNamingPageToken(t *testing.T) {
	for name, token := range map[string]string{
		"not base64":               "%%%",
		"base64 of no JSON":        "bm90IGpzb24",
		"JSON of another shape":    EncodeToken("a string"),
		"the zero cursor":          "e30", // {}
		"JSON null":                "bnVsbA",
		"padded standard encoding": "eyJ0IjoxfQ==",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := DecodeToken[cursor](token)
			if errorMessage(err) != "page_token: not a token this server gave" || c != (cursor{}) {
				t.Fatalf("DecodeToken(%q) = %+v, %v; want the zero cursor and a page_token FieldError", token, c, err)
			}
			if _, ok := errors.AsType[*FieldError](err); !ok {
				t.Fatalf("DecodeToken(%q) error is %T; want a *FieldError", token, err)
			}
		})
	}
}

// errorMessage is err's message, or empty for no error.
func errorMessage(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
