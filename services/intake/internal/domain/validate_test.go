package domain

import (
	"errors"
	"testing"

	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
)

func TestTextAndAddressThatAreNotUTF8AreRefusedNamingTheField(t *testing.T) {
	_, err := CleanText("drain blocked \xff\xfe")
	if fe, ok := errors.AsType[*apiedge.FieldError](err); !ok || fe.Field != "text" {
		t.Errorf("CleanText of bytes that are not UTF-8 = %v; want a FieldError naming text", err)
	}
	err = CheckLocation(&Location{Latitude: 31.2, Longitude: 121.5, Address: "No. 3 \xc3"})
	if fe, ok := errors.AsType[*apiedge.FieldError](err); !ok || fe.Field != "location.address" {
		t.Errorf("CheckLocation with an address that is not UTF-8 = %v; want a FieldError naming location.address", err)
	}
	if _, err := CleanText("水管爆了 No. 12"); err != nil {
		t.Errorf("CleanText of valid UTF-8: %v", err)
	}
}
