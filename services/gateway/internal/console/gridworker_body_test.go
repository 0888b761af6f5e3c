package console

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
)

// gridNoServices is a connection to services that are never reached: every call fails the test.
type gridNoServices struct{ t *testing.T }

// Invoke fails the test: the request should have been answered before any call.
func (n gridNoServices) Invoke(_ context.Context, method string, _, _ any, _ ...grpc.CallOption) error {
	n.t.Errorf("the console called %s", method)
	return errors.New("no services")
}

// NewStream fails the test, as Invoke does.
func (n gridNoServices) NewStream(_ context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	n.t.Errorf("the console called %s", method)
	return nil, errors.New("no services")
}

// gridSignedInConsole is a console over a real Redis and no services, and the session cookie of p
// signed in to it with a link.
func gridSignedInConsole(t *testing.T, p authx.Principal) (*Console, *http.Cookie) {
	t.Helper()
	auth := authx.NewAuthority(bytes.Repeat([]byte("k"), 32))
	c, err := New(Config{Conn: gridNoServices{t}, Authority: auth, Redis: redistest.Client(t, redistest.Run(t))})
	if err != nil {
		t.Fatal(err)
	}
	link, err := auth.MintLink(p, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	c.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/console/login?link="+url.QueryEscape(link), nil))
	for _, ck := range w.Result().Cookies() {
		if ck.Name == sessionCookie {
			return c, ck
		}
	}
	t.Fatalf("signing in gave no session: %d %s", w.Code, w.Body)
	return nil, nil
}

// gridCountingReader counts what was read of it.
type gridCountingReader struct {
	r io.Reader
	n int64
}

// Read reads from r and counts.
func (c *gridCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// gridZeros reads as endless zero bytes.
type gridZeros struct{}

// Read fills p with gridZeros.
func (gridZeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// gridHugeRaise is a raise form with a photo of size bytes, made as it is read.
func gridHugeRaise(size int64) (body *gridCountingReader, contentType string) {
	var head bytes.Buffer
	w := multipart.NewWriter(&head)
	_ = w.WriteField("csrf", "whatever the form had")
	_ = w.WriteField("text", "A drain")
	_, _ = w.CreateFormFile("photos", "huge.jpg")
	tail := "\r\n--" + w.Boundary() + "--\r\n"
	r := io.MultiReader(&head, io.LimitReader(gridZeros{}, size), strings.NewReader(tail))
	return &gridCountingReader{r: r}, w.FormDataContentType()
}

func TestARaiseFormLargerThanItsPhotosMayBeIsRefusedAsTooLargeWithoutACall(t *testing.T) {
	c, session := gridSignedInConsole(t, authx.Principal{Subject: "worker@g", Role: authx.RoleGridWorker, Scope: "g"})
	body, ct := gridHugeRaise(gridMaxRaiseBody)
	r := httptest.NewRequest(http.MethodPost, gridRaisePath, body)
	r.Header.Set("Content-Type", ct)
	r.AddCookie(session)
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "表单太大") {
		t.Errorf("a raise form of more than %d bytes: %d: %s", gridMaxRaiseBody, w.Code, w.Body)
	}
	if body.n > gridMaxRaiseBody+64<<10 {
		t.Errorf("%d bytes were read of a form bounded to %d", body.n, gridMaxRaiseBody)
	}
}

func TestARaiseFormFromAnotherRoleIsRefusedWithoutReadingItsBody(t *testing.T) {
	c, session := gridSignedInConsole(t, authx.Principal{Subject: "officer@water", Role: authx.RoleOfficer, Scope: "water"})
	body, ct := gridHugeRaise(1 << 20)
	r := httptest.NewRequest(http.MethodPost, gridRaisePath, body)
	r.Header.Set("Content-Type", ct)
	r.AddCookie(session)
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("an officer's raise form: %d, want 403: %s", w.Code, w.Body)
	}
	if body.n > 0 {
		t.Errorf("%d bytes were read of a form its sender may not send", body.n)
	}
}
