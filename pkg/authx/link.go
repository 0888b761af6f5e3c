package authx

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// linkIssuer marks a sign-in link. A link is signed with the same key as tokens but carries
// another issuer, so Verify refuses it: a link that leaks (in a chat, a browser's history) is
// never a bearer token for the API, only a way into the console, once.
const linkIssuer = "whistle-sign-in"

// MintLink returns a sign-in link's secret for p, valid for ttl. Its id, which VerifyLink returns,
// is random: the console records it as used so that a link signs in once.
func (a *Authority) MintLink(p Principal, ttl time.Duration) (string, error) {
	if err := a.checkKey(); err != nil {
		return "", err
	}
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("authx: mint a link: %w", err)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("authx: mint a link: ttl %s must be positive", ttl)
	}
	now := a.now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: linkIssuer, Subject: p.Subject, ID: rand.Text(),
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Role: string(p.Role), Scope: p.Scope,
	})
	s, err := tok.SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("authx: sign a link: %w", err)
	}
	return s, nil
}

// VerifyLink checks a sign-in link's signature, expiry and issuer, and returns the Principal it
// signs in and its id. A token is not a link: every rejection wraps ErrInvalidToken.
func (a *Authority) VerifyLink(link string) (Principal, string, error) {
	if err := a.checkKey(); err != nil {
		return Principal{}, "", fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(linkIssuer),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return a.now() }))
	var c claims
	if _, err := parser.ParseWithClaims(link, &c, func(*jwt.Token) (any, error) { return a.key, nil }); err != nil {
		return Principal{}, "", fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	p := Principal{Subject: c.Subject, Role: Role(c.Role), Scope: c.Scope}
	if err := p.validate(); err != nil {
		return Principal{}, "", fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.ID == "" {
		return Principal{}, "", fmt.Errorf("%w: a link without an id", ErrInvalidToken)
	}
	return p, c.ID, nil
}
