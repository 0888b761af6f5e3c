package authx

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// These tests verify each token once so that it is in the cache, then check what the cache
// answers for it.

// clockAt gives a an adjustable clock starting at start, and returns where to move it.
func clockAt(a *Authority, start time.Time) *time.Time {
	now := start
	a.now = func() time.Time { return now }
	return &now
}

func TestACachedTokenIsRefusedFromTheSecondItExpires(t *testing.T) {
	t.Parallel()
	a := NewAuthority(testKey(t))
	now := clockAt(a, time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
	tok, err := a.Mint(officer, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(tok); err != nil {
		t.Fatalf("fresh token rejected: %v", err)
	}
	if a.verified.Len() != 1 {
		t.Fatalf("the cache holds %d tokens after one verified; want 1", a.verified.Len())
	}
	*now = now.Add(time.Minute - time.Nanosecond)
	if p, err := a.Verify(tok); err != nil || p != officer {
		t.Fatalf("a nanosecond before expiry: Verify = %+v, %v; want %+v", p, err, officer)
	}
	*now = now.Add(time.Nanosecond) // the expiry itself: a token is valid only before it
	for range 2 {                   // the second time, after the first refusal dropped it
		if _, err := a.Verify(tok); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("at expiry: err = %v; want an expiry error", err)
		}
	}
	if a.verified.Contains(tok) {
		t.Fatal("the cache still holds the expired token")
	}
}

func TestACachedTokenIsRefusedWhileTheClockIsBeforeItsIssue(t *testing.T) {
	t.Parallel()
	a := NewAuthority(testKey(t))
	now := clockAt(a, time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
	tok, err := a.Mint(officer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(tok); err != nil {
		t.Fatalf("fresh token rejected: %v", err)
	}
	*now = now.Add(-time.Minute) // the clock set back: the token is not issued yet
	if _, err := a.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("before its issue: err = %v; want ErrInvalidToken", err)
	}
	*now = now.Add(2 * time.Minute)
	if p, err := a.Verify(tok); err != nil || p != officer {
		t.Fatalf("after its issue again: Verify = %+v, %v; want %+v", p, err, officer)
	}
}

func TestAChangedCachedTokenIsRefused(t *testing.T) {
	t.Parallel()
	a := NewAuthority(testKey(t))
	supervisor, err := a.Mint(Principal{Subject: "s", Role: RoleSupervisor, Scope: CityScope}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Mint(officer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, good := range []string{supervisor, tok} {
		if _, err := a.Verify(good); err != nil {
			t.Fatalf("fresh token rejected: %v", err)
		}
	}
	header, payload, signature := splitToken(t, tok)
	_, otherPayload, _ := splitToken(t, supervisor)
	flip := func(s string) string { // another base64url character at the end
		last := s[len(s)-1]
		if last == 'A' {
			return s[:len(s)-1] + "Q"
		}
		return s[:len(s)-1] + "A"
	}
	for name, changed := range map[string]string{
		"another payload under its signature": header + "." + otherPayload + "." + signature,
		"a signature changed":                 header + "." + payload + "." + flip(signature),
		"a payload changed":                   header + "." + flip(payload) + "." + signature,
		"a character added":                   tok + "A",
		"its signature removed":               header + "." + payload + ".",
	} {
		if p, err := a.Verify(changed); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: Verify = %+v, %v; want ErrInvalidToken", name, p, err)
		}
	}
	if p, err := a.Verify(tok); err != nil || p != officer {
		t.Fatalf("the token itself: Verify = %+v, %v; want %+v", p, err, officer)
	}
	if n := a.verified.Len(); n != 2 {
		t.Fatalf("the cache holds %d tokens; want the 2 that verified", n)
	}
}

func TestTheCacheKeepsAtMostItsBoundAndATokenPastItStillVerifies(t *testing.T) {
	t.Parallel()
	a := NewAuthority(testKey(t))
	tokens := make([]string, TokenCacheSize+10)
	for i := range tokens {
		p := Principal{Subject: fmt.Sprintf("officer-%d", i), Role: RoleOfficer, Scope: "water"}
		tok, err := a.Mint(p, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := a.Verify(tok); err != nil || got != p {
			t.Fatalf("token %d: Verify = %+v, %v; want %+v", i, got, err, p)
		}
		tokens[i] = tok
	}
	if n := a.verified.Len(); n != TokenCacheSize {
		t.Fatalf("the cache holds %d tokens after %d verified; want its bound, %d", n, len(tokens), TokenCacheSize)
	}
	if a.verified.Contains(tokens[0]) {
		t.Fatal("the cache still holds the least recently used token")
	}
	if got, err := a.Verify(tokens[0]); err != nil || got.Subject != "officer-0" {
		t.Fatalf("a token dropped from the cache: Verify = %+v, %v; want officer-0", got, err)
	}
}

func TestARefusedTokenIsNeverCached(t *testing.T) {
	t.Parallel()
	a := NewAuthority(testKey(t))
	other, err := NewAuthority([]byte(strings.Repeat("k", 32))).Mint(officer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := a.Verify(other); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("a token of another key: err = %v; want ErrInvalidToken", err)
		}
	}
	if n := a.verified.Len(); n != 0 {
		t.Fatalf("the cache holds %d tokens; want none", n)
	}
}

// splitToken returns a token's three parts.
func splitToken(t *testing.T, tok string) (header, payload, signature string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", tok, len(parts))
	}
	return parts[0], parts[1], parts[2]
}
