package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/authx"
)

// SessionTTL is how long a session lasts from sign-in: a working day and its evening. The
// person signs in again with a new link after it.
const SessionTTL = 12 * time.Hour

// sessionCookie is the cookie that names a session; langCookie keeps the chosen language.
const (
	sessionCookie = "whistle_session"
	langCookie    = "whistle_lang"
)

// keyPrefix is the console's Redis keys' prefix.
const keyPrefix = "gateway:console:"

// session is one signed-in person, as Redis keeps it under its id. Token is the person's bearer
// token for the services, minted at sign-in for the session's life; CSRF is what every form of
// the session must carry back.
type session struct {
	ID        string          `json:"-"`
	Principal authx.Principal `json:"principal"`
	Token     string          `json:"token"`
	CSRF      string          `json:"csrf"`
	Expires   time.Time       `json:"expires"`
}

// sessions keeps sessions and used links in Redis, so that any console process serves any
// person and a link signs in once whichever process it reaches.
type sessions struct {
	rdb       redis.UniversalClient
	authority *authx.Authority
	now       func() time.Time
}

// errLinkUsed and errLinkInvalid are the two ways a sign-in link is refused.
var (
	errLinkUsed    = errors.New("this sign-in link was used already")
	errLinkInvalid = errors.New("this sign-in link is not valid or has expired")
)

// signIn spends a one-time link and starts its session.
func (s sessions) signIn(ctx context.Context, link string) (session, error) {
	p, id, err := s.authority.VerifyLink(link)
	if err != nil {
		return session{}, errLinkInvalid
	}
	// A link lives at most MaxLinkTTL, so remembering it that long keeps it spent until it expires.
	fresh, err := s.rdb.SetNX(ctx, keyPrefix+"link:"+id, 1, MaxLinkTTL).Result()
	if err != nil {
		return session{}, fmt.Errorf("console: record the link: %w", err)
	}
	if !fresh {
		return session{}, errLinkUsed
	}
	token, err := s.authority.Mint(p, SessionTTL)
	if err != nil {
		return session{}, err
	}
	ss := session{ID: rand.Text(), Principal: p, Token: token, CSRF: rand.Text(), Expires: s.now().Add(SessionTTL)}
	b, err := json.Marshal(ss)
	if err != nil {
		return session{}, err
	}
	if err := s.rdb.Set(ctx, sessionKey(ss.ID), b, SessionTTL).Err(); err != nil {
		return session{}, fmt.Errorf("console: store the session: %w", err)
	}
	return ss, nil
}

// MaxLinkTTL is the longest a sign-in link may live; whistle login-link refuses longer.
const MaxLinkTTL = 24 * time.Hour

func sessionKey(id string) string { return keyPrefix + "session:" + id }

// of returns the request's session, or false when it has none that is current.
func (s sessions) of(r *http.Request) (session, bool, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 64 {
		return session{}, false, nil
	}
	b, err := s.rdb.Get(r.Context(), sessionKey(ck.Value)).Bytes()
	if errors.Is(err, redis.Nil) {
		return session{}, false, nil
	}
	if err != nil {
		return session{}, false, fmt.Errorf("console: read the session: %w", err)
	}
	var ss session
	if err := json.Unmarshal(b, &ss); err != nil {
		return session{}, false, fmt.Errorf("console: decode the session: %w", err)
	}
	ss.ID = ck.Value
	if !s.now().Before(ss.Expires) {
		return session{}, false, nil
	}
	return ss, true, nil
}

// end signs a session out: its id no longer names anything.
func (s sessions) end(ctx context.Context, ss session) error {
	return s.rdb.Del(ctx, sessionKey(ss.ID)).Err()
}

// checkCSRF reports whether a form carries its session's CSRF token.
func (ss session) checkCSRF(r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.CSRF)) == 1
}

// setCookie gives the browser the session's id, for the console's pages only.
func setCookie(w http.ResponseWriter, r *http.Request, ss session) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: ss.ID, Path: Path, Expires: ss.Expires,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// clearCookie removes the session's cookie.
func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Path, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}
