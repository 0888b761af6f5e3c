package authx

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testKey returns a fresh 32-byte key.
func testKey(t *testing.T) []byte {
	t.Helper()
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

var officer = Principal{Subject: "officer-7", Role: RoleOfficer, Scope: "dept/water"}

func TestMintedTokenVerifiesToTheSamePrincipal(t *testing.T) {
	t.Parallel()
	a := NewAuthority(testKey(t))
	tok, err := a.Mint(officer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Verify(tok)
	if err != nil || got != officer {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, officer)
	}
}

func TestVerifyRejectsBadTokens(t *testing.T) {
	t.Parallel()
	key := testKey(t)
	a := NewAuthority(key)
	good, err := a.Mint(officer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(method jwt.SigningMethod, key any, c claims) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := func() claims {
		return claims{
			RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: "s", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))},
			Role:             string(RoleSupervisor), Scope: CityScope,
		}
	}
	with := func(edit func(*claims)) claims { c := valid(); edit(&c); return c }

	for _, tc := range []struct {
		name  string
		token string
	}{
		{"a payload changed after signing", func() string {
			forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, valid()).SigningString()
			if err != nil {
				t.Fatal(err)
			}
			return forged + good[strings.LastIndex(good, "."):] // the officer's signature on a supervisor's claims
		}()},
		{"a token signed with another key", sign(jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), valid())},
		{"an unsigned token", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid())},
		{"an HS512 token", sign(jwt.SigningMethodHS512, key, valid())},
		{"another issuer", sign(jwt.SigningMethodHS256, key, with(func(c *claims) { c.Issuer = "other" }))},
		{"no expiry", sign(jwt.SigningMethodHS256, key, with(func(c *claims) { c.ExpiresAt = nil }))},
		{"an unknown role", sign(jwt.SigningMethodHS256, key, with(func(c *claims) { c.Role = "mayor" }))},
		{"an empty scope", sign(jwt.SigningMethodHS256, key, with(func(c *claims) { c.Scope = "" }))},
		{"garbage", "not.a.token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := a.Verify(tc.token); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", p, err)
			}
		})
	}
}

func TestVerifyRejectsATokenOnceItHasExpired(t *testing.T) {
	t.Parallel()
	a := NewAuthority(testKey(t))
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	tok, err := a.Mint(officer, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(tok); err != nil {
		t.Fatalf("fresh token rejected: %v", err)
	}
	now = now.Add(time.Minute + time.Second)
	if _, err := a.Verify(tok); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: err = %v, want an expiry error", err)
	}
}

func TestMintRefusesWhatVerifyWouldReject(t *testing.T) {
	t.Parallel()
	a := NewAuthority(testKey(t))
	for name, p := range map[string]Principal{
		"no subject":   {Role: RoleOfficer, Scope: CityScope},
		"unknown role": {Subject: "s", Role: "mayor", Scope: CityScope},
		"no scope":     {Subject: "s", Role: RoleOfficer},
	} {
		if _, err := a.Mint(p, time.Hour); err == nil {
			t.Errorf("%s: Mint succeeded", name)
		}
	}
	if _, err := a.Mint(officer, 0); err == nil {
		t.Error("Mint with zero ttl succeeded")
	}
	if _, err := NewAuthority([]byte("short")).Mint(officer, time.Hour); err == nil {
		t.Error("Mint with a short key succeeded")
	}
	var none *Authority
	if _, err := none.Verify("x"); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("nil Authority: Verify err = %v, want ErrInvalidToken", err)
	}
}

func TestParseRoleAcceptsEveryRoleAndNothingElse(t *testing.T) {
	t.Parallel()
	for _, r := range []Role{RoleGridWorker, RoleOfficer, RoleDispatcher, RoleSupervisor, RoleIntegrator} {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "Officer", "admin"} {
		if _, err := ParseRole(s); err == nil {
			t.Errorf("ParseRole(%q) succeeded", s)
		}
	}
}

func TestLoadOrCreateKeyCreatesAPrivateKeyOnceAndReadsItBack(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secrets", "token.key")
	first, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Fatalf("key file mode %v, want 0600", mode)
	}
	second, err := LoadOrCreateKey(path)
	if err != nil || string(second) != string(first) || len(first) != 32 {
		t.Fatalf("reloaded key differs or has %d bytes: %v", len(first), err)
	}

	raw := filepath.Join(t.TempDir(), "raw.key")
	if err := os.WriteFile(raw, []byte(strings.Repeat("\x01", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := LoadOrCreateKey(raw); err != nil || len(k) != 32 {
		t.Fatalf("raw key: %d bytes, %v", len(k), err)
	}
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("abcd"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(short); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestLoadKeyReadsAKeyAndNeverCreatesOne(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token.key")
	if _, err := LoadKey(path); !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), path) {
		t.Fatalf("LoadKey of a missing file = %v; want ErrNoKey naming %s", err, path)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadKey created %s", path)
	}
	made, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := LoadKey(path); err != nil || !bytes.Equal(got, made) {
		t.Errorf("LoadKey = %x, %v; want the key made, %x", got, err, made)
	}
}

func TestCheckScopeAllowsEachRoleOnlyTheScopesItCanHold(t *testing.T) {
	t.Parallel()
	all := []ScopeKind{ScopeGrid, ScopeCommunity, ScopeStreet, ScopeCity, ScopeUnit}
	allowed := map[Role][]ScopeKind{
		RoleGridWorker: {ScopeGrid},
		RoleOfficer:    {ScopeUnit},
		RoleDispatcher: {ScopeGrid, ScopeCommunity, ScopeStreet, ScopeCity},
		RoleSupervisor: {ScopeGrid, ScopeCommunity, ScopeStreet, ScopeCity},
	}
	for role, kinds := range allowed {
		for _, kind := range all {
			err := CheckScope(role, "some-"+string(kind), kind)
			if want := slices.Contains(kinds, kind); (err == nil) != want {
				t.Errorf("CheckScope(%s, a %s) = %v; allowed %v", role, kind, err, want)
			}
		}
	}
	err := CheckScope(RoleOfficer, "xinhua-taoyuan", ScopeCommunity)
	for _, want := range []string{"officer", `"xinhua-taoyuan"`, "a community", "a unit id"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %v does not say %q", err, want)
		}
	}
}

func TestASignInLinkSignsInItsPrincipalAndIsNoToken(t *testing.T) {
	t.Parallel()
	a := NewAuthority(bytes.Repeat([]byte("k"), 32))
	p := Principal{Subject: "water.2", Role: RoleOfficer, Scope: "water"}
	link, err := a.MintLink(p, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, id, err := a.VerifyLink(link)
	if err != nil || got != p || id == "" {
		t.Fatalf("VerifyLink = %+v, %q, %v; want %+v and an id", got, id, err, p)
	}
	if _, again, _ := a.VerifyLink(mustLink(t, a, p)); again == id {
		t.Errorf("two links share the id %q", id)
	}
	if _, err := a.Verify(link); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a link verified as a token: %v", err)
	}
	tok, err := a.Mint(p, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.VerifyLink(tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a token verified as a link: %v", err)
	}
	a.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, _, err := a.VerifyLink(link); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("an expired link verified: %v", err)
	}
}

func mustLink(t *testing.T, a *Authority, p Principal) string {
	t.Helper()
	link, err := a.MintLink(p, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return link
}
