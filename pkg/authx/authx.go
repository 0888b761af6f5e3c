// Package authx mints and verifies the signed tokens every Whistle caller presents,
// and enforces them on gRPC, so that each call carries who is calling, in what role,
// and over which part of the area tree.
package authx

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Role is what a caller may do; the services decide what each role is allowed.
type Role string

// The roles of the people who use Whistle.
const (
	// RoleGridWorker raises and verifies issues in their grid.
	RoleGridWorker Role = "grid-worker"
	// RoleOfficer is a department duty officer who works the department's assignments.
	RoleOfficer Role = "officer"
	// RoleDispatcher routes by hand what no rule could.
	RoleDispatcher Role = "dispatcher"
	// RoleSupervisor watches breaches, urges and decides extensions.
	RoleSupervisor Role = "supervisor"
	// RoleIntegrator is another system of the city (a 12345 hotline, a residents' mini-program,
	// an enterprise service window) that raises and follows issues on the public's behalf
	// through Open311. Its subject is the integrator's name and its scope the city.
	RoleIntegrator Role = "integrator"
)

// CityScope is the scope of the whole area tree, the root above every street.
const CityScope = "city"

// issuer is written into every token and required on verification, so that a token
// signed with the same key for another purpose is not accepted.
const issuer = "whistle"

// minKeyLen is the shortest HMAC key accepted; HS256 is only as strong as its key.
const minKeyLen = 32

// ErrInvalidToken is wrapped by every error Verify returns, so callers can tell a
// rejected token from any other failure.
var ErrInvalidToken = errors.New("invalid token")

// ParseRole returns the Role named by s, or an error if s names no role.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleGridWorker, RoleOfficer, RoleDispatcher, RoleSupervisor, RoleIntegrator:
		return r, nil
	}
	return "", fmt.Errorf("authx: unknown role %q (want %s, %s, %s, %s or %s)", s,
		RoleGridWorker, RoleOfficer, RoleDispatcher, RoleSupervisor, RoleIntegrator)
}

// Principal is the authenticated caller: who, in what role, over which scope (a grid,
// department, street or CityScope).
type Principal struct {
	Subject string
	Role    Role
	Scope   string
}

// validate reports why p cannot be put in or taken from a token.
func (p Principal) validate() error {
	if p.Subject == "" {
		return errors.New("empty subject")
	}
	if _, err := ParseRole(string(p.Role)); err != nil {
		return err
	}
	if p.Scope == "" {
		return errors.New("empty scope")
	}
	return nil
}

// claims is the token body: the registered claims plus the caller's role and scope.
type claims struct {
	jwt.RegisteredClaims
	Role  string `json:"role"`
	Scope string `json:"scope"`
}

// LoadOrCreateKey reads the signing key at path, or creates it with 32 random bytes
// (written hex-encoded, mode 0600) if the file does not exist, so that a fresh install
// has a key without a setup step. It accepts hex or raw bytes of at least 32 bytes.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("authx: read key: %w", err)
	}
	return decodeKey(path, b)
}

// ErrNoKey means the signing key file does not exist.
var ErrNoKey = errors.New("no signing key")

// LoadKey reads the signing key at path and never creates one: a tool that mints tokens for
// a running server must use that server's key, and a key made up for a mistyped path would
// sign tokens the server refuses. A missing file wraps ErrNoKey.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("authx: %w at %s", ErrNoKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("authx: read key: %w", err)
	}
	return decodeKey(path, b)
}

// createKey writes a new key; O_EXCL makes a process that loses a race to create the
// file read the winner's key instead of overwriting it.
func createKey(path string) ([]byte, error) {
	key := make([]byte, minKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("authx: generate key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("authx: key dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("authx: create key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("authx: write key: %w", err)
	}
	return key, nil
}

// decodeKey reads a key file's contents as hex if they are hex, else as raw bytes.
func decodeKey(path string, b []byte) ([]byte, error) {
	key := b
	if h, err := hex.DecodeString(string(bytes.TrimSpace(b))); err == nil {
		key = h
	}
	if len(key) < minKeyLen {
		return nil, fmt.Errorf("authx: key in %s has %d bytes, want at least %d", path, len(key), minKeyLen)
	}
	return key, nil
}

// TokenCacheSize bounds how many verified tokens an Authority remembers: the tokens of the
// callers active at one time, each presented on every call they make. A token past the bound
// is verified in full again when it next comes, so the bound limits memory, never what is
// accepted.
const TokenCacheSize = 4096

// Authority mints and verifies tokens with one HMAC key. A nil *Authority rejects every
// token, so a server wired without one fails closed.
type Authority struct {
	key []byte
	now func() time.Time // the clock; replaced in tests to check expiry
	// parser checks a token's signature and claims; validator checks the claims alone, with
	// the same rules and clock, on every use of a token whose signature was checked before.
	parser    *jwt.Parser
	validator *jwt.Validator
	// verified holds the claims of tokens whose signature and claims verified, by the token
	// itself, so that a caller's next call costs a lookup and a check of the times, not a
	// decode and an HMAC. Keyed by the whole token, a token changed in any byte is a miss.
	verified *lru.Cache[string, *verifiedToken]
}

// verifiedToken is what a token that verified carries.
type verifiedToken struct {
	claims    claims
	principal Principal
}

// NewAuthority returns an Authority that signs with a copy of key. A key shorter than
// 32 bytes makes Mint and Verify fail, since such a key is too weak to trust.
func NewAuthority(key []byte) *Authority {
	a := &Authority{key: bytes.Clone(key), now: time.Now}
	rules := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return a.now() }),
	}
	a.parser = jwt.NewParser(rules...)
	a.validator = jwt.NewValidator(rules...)
	a.verified, _ = lru.New[string, *verifiedToken](TokenCacheSize) // errs only for a size below 1
	return a
}

// checkKey reports whether a can sign and verify at all.
func (a *Authority) checkKey() error {
	if a == nil {
		return errors.New("authx: no authority configured")
	}
	if len(a.key) < minKeyLen {
		return fmt.Errorf("authx: signing key has %d bytes, want at least %d", len(a.key), minKeyLen)
	}
	return nil
}

// Mint returns a signed HS256 token for p that expires after ttl.
func (a *Authority) Mint(p Principal, ttl time.Duration) (string, error) {
	if err := a.checkKey(); err != nil {
		return "", err
	}
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("authx: mint: %w", err)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("authx: mint: ttl %s must be positive", ttl)
	}
	now := a.now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   p.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Role:  string(p.Role),
		Scope: p.Scope,
	})
	s, err := tok.SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("authx: sign: %w", err)
	}
	return s, nil
}

// Verify checks token's signature (HS256 only, so that "none" and algorithm-confusion
// tokens are refused), expiry, issuer and claims, and returns the Principal it carries.
// Every rejection wraps ErrInvalidToken.
func (a *Authority) Verify(token string) (Principal, error) {
	p, _, err := a.verify(token)
	return p, err
}

// verify is Verify returning also when the token expires, which a stream needs to end itself.
// A token verified before is taken from the cache only while its claims still pass the same
// checks of expiry, issue time and issuer on the clock now; one that fails them is dropped
// and verified in full, which says why it is refused.
func (a *Authority) verify(token string) (Principal, time.Time, error) {
	if err := a.checkKey(); err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if v, ok := a.verified.Get(token); ok {
		if a.validator.Validate(&v.claims) == nil {
			return v.principal, v.claims.ExpiresAt.Time, nil
		}
		a.verified.Remove(token)
	}
	v := new(verifiedToken)
	_, err := a.parser.ParseWithClaims(token, &v.claims, func(*jwt.Token) (any, error) { return a.key, nil })
	if err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	c := &v.claims
	v.principal = Principal{Subject: c.Subject, Role: Role(c.Role), Scope: c.Scope}
	if err := v.principal.validate(); err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	a.verified.Add(token, v)
	return v.principal, c.ExpiresAt.Time, nil
}

// principalKey is the context key of the Principal; unexported so only this package
// can set it.
type principalKey struct{}

// WithPrincipal returns a context carrying p, as the interceptors do after verifying
// a token; tests of handlers use it to act as a caller.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller carried by ctx, and false if there is none.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
