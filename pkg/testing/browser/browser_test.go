package browser_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/whistle-dispatch/whistle/pkg/testing/browser"
)

// serve starts an HTTP server for the test that answers path "/" with page.
func serve(t *testing.T, page string, more map[string]http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	})
	for path, h := range more {
		mux.HandleFunc(path, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestAClickChangesWhatThePageShows(t *testing.T) {
	t.Parallel()
	srv := serve(t, `<!doctype html><title>click</title>
<p id="status">not clicked</p>
<button id="go" onclick="document.getElementById('status').textContent = 'clicked'">Go</button>`, nil)
	ctx := browser.New(t)
	browser.Run(t, ctx, "open the page and click",
		chromedp.Navigate(srv.URL),
		chromedp.Click(chromedp.CSS("#go")),
	)
	browser.WaitText(t, ctx, "#status", "clicked")
	if got := browser.Text(t, ctx, "#status"); got != "clicked" {
		t.Fatalf("status after the click is %q, want %q", got, "clicked")
	}
}

func TestThePageShowsAServerSentEventWithoutReloading(t *testing.T) {
	t.Parallel()
	var pageLoads atomic.Int32
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		pageLoads.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>events</title>
<ul id="log"><li>waiting</li></ul>
<script>
new EventSource("/events").onmessage = (e) => {
	const li = document.createElement("li");
	li.textContent = e.data;
	document.getElementById("log").append(li);
};
</script>`)
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		// The message waits until the test has seen the page without it.
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: courier assigned\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { closeOnce(release) })

	ctx := browser.New(t)
	browser.Run(t, ctx, "open the page", chromedp.Navigate(srv.URL))
	browser.WaitText(t, ctx, "#log", "waiting")
	if got := browser.Text(t, ctx, "#log"); strings.Contains(got, "courier assigned") {
		t.Fatalf("the page shows the message before the server sent it: %q", got)
	}
	closeOnce(release)
	browser.WaitText(t, ctx, "#log", "courier assigned")
	if n := pageLoads.Load(); n != 1 {
		t.Fatalf("the page was loaded %d times, want once", n)
	}
}

// closeOnce closes ch unless it is closed already.
func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func TestAScreenshotIsAPNGAsWideAsTheWindow(t *testing.T) {
	t.Parallel()
	srv := serve(t, `<!doctype html><meta name="viewport" content="width=device-width">
<title>phone</title><h1>Whistle</h1><div style="height: 2000px">tall</div>`, nil)
	ctx := browser.New(t, browser.WithWindow(360, 740))
	browser.Run(t, ctx, "open the page", chromedp.Navigate(srv.URL))
	path := filepath.Join(t.TempDir(), "shots", "phone.png")
	browser.Screenshot(t, ctx, path)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sig := []byte("\x89PNG\r\n\x1a\n"); !bytes.HasPrefix(data, sig) {
		t.Fatalf("screenshot starts with % x, want the PNG signature % x", data[:min(len(data), 8)], sig)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decoding the screenshot: %v", err)
	}
	if w := img.Bounds().Dx(); w != 360 {
		t.Fatalf("screenshot is %d pixels wide, want 360", w)
	}
	// The whole page, not just the window: the page is taller than 740 pixels.
	if h := img.Bounds().Dy(); h <= 740 {
		t.Fatalf("screenshot is %d pixels high, want the whole 2000-pixel page", h)
	}
}

func TestTheBrowserAsksForTheLanguageItWasGiven(t *testing.T) {
	t.Parallel()
	for _, lang := range []string{"en", "zh-CN"} {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var got []string
			srv := serve(t, "", map[string]http.HandlerFunc{
				"/lang": func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					got = append(got, r.Header.Get("Accept-Language"))
					mu.Unlock()
					fmt.Fprint(w, "ok")
				},
			})
			ctx := browser.New(t, browser.WithLanguage(lang))
			browser.Run(t, ctx, "open the page", chromedp.Navigate(srv.URL+"/lang"))
			mu.Lock()
			defer mu.Unlock()
			if len(got) == 0 {
				t.Fatal("the server saw no request")
			}
			if !strings.HasPrefix(got[0], lang) {
				t.Fatalf("Accept-Language is %q, want it to start with %q", got[0], lang)
			}
			// The page's scripts see the same language, also where they format dates.
			var seen []string
			browser.Run(t, ctx, "read the page's languages", chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
				var err error
				seen, err = chromedp.Evaluate[[]string](`[navigator.language, Intl.DateTimeFormat().resolvedOptions().locale]`)(ctx, target)
				return err
			}))
			if want := []string{lang, lang}; !slices.Equal(seen, want) {
				t.Fatalf("navigator.language and the Intl locale are %q, want %q", seen, want)
			}
		})
	}
}

func TestTwoBrowsersDoNotShareCookies(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	cookies := map[string]string{} // who → the Cookie header of their last check
	srv := serve(t, "", map[string]http.HandlerFunc{
		"/sign-in": func(w http.ResponseWriter, r *http.Request) {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "alice", Path: "/"})
			fmt.Fprint(w, "signed in")
		},
		"/check/{who}": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			cookies[r.PathValue("who")] = r.Header.Get("Cookie")
			mu.Unlock()
			fmt.Fprint(w, "checked")
		},
	})
	alice := browser.New(t)
	bob := browser.New(t)
	browser.Run(t, alice, "alice signs in",
		chromedp.Navigate(srv.URL+"/sign-in"),
		chromedp.Navigate(srv.URL+"/check/alice"),
	)
	browser.Run(t, bob, "bob looks", chromedp.Navigate(srv.URL+"/check/bob"))

	mu.Lock()
	defer mu.Unlock()
	// Alice's own request carries the cookie, so bob's lack of it means something.
	if got := cookies["alice"]; got != "session=alice" {
		t.Fatalf("alice's browser sends Cookie %q, want %q", got, "session=alice")
	}
	if got := cookies["bob"]; got != "" {
		t.Fatalf("bob's browser sends Cookie %q, want none", got)
	}
}

// recorder stands in for the test given to Run, so that Run's failure can be observed without
// failing this test; like the real Fatalf, its Fatalf stops the goroutine.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// Not parallel: t.Setenv forbids it.
func TestAFailedStepReportsTheScreenshotURLAndTextOfThePage(t *testing.T) {
	srv := serve(t, `<!doctype html><title>broken</title><p>Orders: none yet</p>`, nil)
	ctx := browser.New(t)
	browser.Run(t, ctx, "open the page", chromedp.Navigate(srv.URL))

	dir := t.TempDir()
	t.Setenv("WHISTLE_SCREENSHOTS", dir)
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		browser.Run(rec, ctx, "press the missing button",
			chromedp.Evaluate[chromedp.Void](`(() => { throw new Error("no such button"); })()`))
	}()
	<-done

	for _, want := range []string{"press the missing button: ", "no such button", "url: " + srv.URL, "Orders: none yet"} {
		if !strings.Contains(rec.msg, want) {
			t.Errorf("failure message does not contain %q:\n%s", want, rec.msg)
		}
	}
	shots, err := filepath.Glob(filepath.Join(dir, "*.png"))
	if err != nil || len(shots) != 1 {
		t.Fatalf("screenshots in $WHISTLE_SCREENSHOTS: %v (%v), want one", shots, err)
	}
	if !strings.Contains(rec.msg, "screenshot: "+shots[0]) {
		t.Errorf("failure message does not name the screenshot %s:\n%s", shots[0], rec.msg)
	}
}
