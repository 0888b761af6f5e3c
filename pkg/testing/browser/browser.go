// Package browser drives a real headless Chromium from Go tests with chromedp, so that the web
// console is tested as a person uses it. It finds Debian's chromium, which scripts/setup.sh --browser
// installs, and gives each test a fresh browser that closes when the test ends. Its helpers fail
// the test at the first step that goes wrong, with a screenshot, the page's URL and its text, so
// that a failure in CI says what the page showed.
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Timeout bounds one call of Run, Text or WaitText: long enough for a slow CI machine, short
// enough that a page that never gets there fails the test instead of hanging it.
const Timeout = 30 * time.Second

// startTimeout bounds the start of Chromium, which has no action of its own to time out.
const startTimeout = time.Minute

// closeTimeout bounds the graceful close of Chromium at the end of a test, after which it is
// killed.
const closeTimeout = 10 * time.Second

// diagnoseTimeout bounds the collection of a failed step's screenshot, URL and text, which must
// not hang when the page is what hangs.
const diagnoseTimeout = 5 * time.Second

// pollInterval is how often WaitText reads the page.
const pollInterval = 50 * time.Millisecond

// maxBodyText is how much of the page's text a failure prints: enough to recognise the page,
// not so much that it buries the log.
const maxBodyText = 4000

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// config is what the options set.
type config struct {
	width, height int
	lang          string
}

// Option changes how New starts the browser.
type Option func(*config)

// WithWindow sets the size of the browser window, and so the page's viewport, in CSS pixels.
// The default is 1280×800; the console is built for a phone first, so its tests use
// WithWindow(360, 740).
func WithWindow(width, height int) Option {
	return func(c *config) { c.width, c.height = width, height }
}

// WithLanguage sets the language the browser prefers, such as "zh-CN" or "en": the
// Accept-Language header of its requests, navigator.language, and the locale in which the page's
// scripts format dates and numbers. Without it the browser follows the
// machine's locale: American English on a machine set to C.UTF-8.
func WithLanguage(lang string) Option {
	return func(c *config) { c.lang = lang }
}

// New starts a headless Chromium for the test and returns a chromedp context for a tab in it.
// The context is cancelled, and the browser closed, when the test ends. Each call is a separate
// browser with its own profile and so its own cookies: a separate person, which is how a test
// has two people signed in at once. When Chromium is not installed, New fails the test and says
// to run scripts/setup.sh --browser; it does not skip, because a test that skips cannot fail.
func New(t testing.TB, opts ...Option) context.Context {
	t.Helper()
	cfg := config{width: 1280, height: 800}
	for _, o := range opts {
		o(&cfg)
	}
	path := findChromium()
	if path == "" {
		t.Fatalf("browser: no chromium at %s or on PATH; run scripts/setup.sh --browser to install it", chromiumPath)
	}
	// On a machine whose network is closed, as Whistle's CI machines are, Chromium hangs on the
	// background connections it makes (updates, sync, QUIC probes) unless these flags turn them
	// off.
	flags := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // Tests run as root, where Chromium refuses its sandbox.
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(cfg.width, cfg.height),
	)
	// Chromium keeps a window at least 500 pixels wide whatever --window-size says, and a phone
	// is narrower, so the tab's viewport is set as well.
	setup := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(int64(cfg.width), int64(cfg.height))}
	if cfg.lang != "" {
		// On Linux --lang changes neither Accept-Language nor navigator.language; --accept-lang
		// sets both. Neither changes the locale of Intl and toLocaleString, which the override
		// does, so that dates and numbers read as they do for that person.
		flags = append(flags,
			chromedp.Flag("lang", cfg.lang),
			chromedp.Flag("accept-lang", cfg.lang),
		)
		setup = append(setup, chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
			_, err := cdp.Call(ctx, target, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: cfg.lang})
			return err
		}))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), flags...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		// A graceful close lets Chromium finish writing its profile before t.TempDir, which
		// was registered earlier and so is cleaned up later, removes it.
		closeCtx, cancelClose := context.WithTimeout(ctx, closeTimeout)
		defer cancelClose()
		if err := chromedp.Cancel(closeCtx); err != nil {
			// Only logged: the test's own steps have already passed or failed.
			t.Logf("browser: closing %s: %v", path, err)
		}
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser and binds its life to its context, so it runs on ctx
	// itself, with no deadline; a timer stands in for one.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, setup...) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("browser: starting %s: %v", path, err)
		}
	case <-time.After(startTimeout):
		cancel()
		t.Fatalf("browser: %s did not start within %s", path, startTimeout)
	}
	return ctx
}

// findChromium returns the path of the chromium binary, or "" when there is none.
func findChromium() string {
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

// Screenshot writes a PNG of the whole page, beyond the viewport, to path, creating its
// directory, and fails the test if it cannot.
func Screenshot(t testing.TB, ctx context.Context, path string) {
	t.Helper()
	var png []byte
	Run(t, ctx, "screenshot", capture(fullPNG(), &png))
	if err := writeFile(path, png); err != nil {
		t.Fatalf("browser: screenshot: %v", err)
	}
}

// fullPNG captures the whole page as a PNG. chromedp.FullScreenshot makes a PNG only at quality
// 100; any other quality is a JPEG.
func fullPNG() chromedp.Action[[]byte] {
	return chromedp.FullScreenshot(100)
}

// writeFile writes data to path, creating its directory.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// Run runs the actions in the tab, in order, within Timeout, and fails the test with what and
// the error at the first that fails, so that a test reads as a list of steps. The failure
// message has the path of a screenshot of the page (in $WHISTLE_SCREENSHOTS when set, otherwise
// in t.TempDir()), the page's URL and the start of its text.
func Run(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	stepCtx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(stepCtx, actions...); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, diagnose(t, ctx))
	}
}

// Text returns the visible text (innerText) of the first element that matches the CSS
// selector, waiting up to Timeout for it to appear, and fails the test if it does not.
func Text(t testing.TB, ctx context.Context, selector string) string {
	t.Helper()
	var text string
	Run(t, ctx, fmt.Sprintf("text of %q", selector), capture(chromedp.Text(chromedp.CSS(selector)), &text))
	return text
}

// WaitText waits up to Timeout until the visible text of the first element that matches the CSS
// selector contains want, and otherwise fails the test with the text it last saw. It reads the
// page again and again rather than once, so it sees a page that changes by itself, and it
// outlives a navigation.
func WaitText(t testing.TB, ctx context.Context, selector, want string) {
	t.Helper()
	// The selector goes into the script as a JSON string, which is a JavaScript string literal.
	sel, _ := json.Marshal(selector)
	script := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e === null ? null : e.innerText; })()`, sel)
	last := "no element matches"
	deadline := time.Now().Add(Timeout)
	for {
		readCtx, cancel := context.WithDeadline(ctx, deadline)
		text, err := chromedp.Run(readCtx, chromedp.Evaluate[*string](script))
		cancel()
		switch {
		case err != nil:
			// A page that is navigating has no document to read for a moment; try again.
			last = "error: " + err.Error()
		case text == nil:
			last = "no element matches"
		case strings.Contains(*text, want):
			return
		default:
			last = fmt.Sprintf("%q", *text)
		}
		if !time.Now().Add(pollInterval).Before(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(pollInterval)
	}
	t.Fatalf("text of %q does not contain %q within %s; last saw %s\n%s", selector, want, Timeout, last, diagnose(t, ctx))
}

// capture makes an action that returns nothing from one that returns a value, storing the value
// in dst, so that Run can run it among other steps.
func capture[T any](a chromedp.Action[T], dst *T) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		v, err := a(ctx, target)
		*dst = v
		return err
	})
}

// diagnose describes the page for a failure message: where a screenshot of it is, its URL and
// its text. It reports what it cannot get rather than failing, because the page may be broken.
func diagnose(t testing.TB, ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, diagnoseTimeout)
	defer cancel()
	var b strings.Builder
	shot, err := saveScreenshot(t, ctx)
	if err != nil {
		shot = "none: " + err.Error()
	}
	fmt.Fprintf(&b, "screenshot: %s\n", shot)
	url, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		url = "unknown: " + err.Error()
	}
	fmt.Fprintf(&b, "url: %s\n", url)
	body, err := chromedp.Run(ctx, chromedp.Evaluate[*string](`document.body === null ? null : document.body.innerText`))
	switch {
	case err != nil:
		fmt.Fprintf(&b, "page text unknown: %v", err)
	case body == nil:
		b.WriteString("page has no body")
	default:
		fmt.Fprintf(&b, "page text:\n%s", truncate(*body, maxBodyText))
	}
	return b.String()
}

// saveScreenshot saves a screenshot of the page for a failure message and returns its path.
func saveScreenshot(t testing.TB, ctx context.Context) (string, error) {
	png, err := chromedp.Run(ctx, fullPNG())
	if err != nil {
		return "", err
	}
	dir := os.Getenv("WHISTLE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// The test's name tells which test a file in a shared $WHISTLE_SCREENSHOTS belongs to; the
	// random part keeps two failures apart.
	name := strings.NewReplacer("/", "_", " ", "_", string(filepath.Separator), "_").Replace(t.Name())
	f, err := os.CreateTemp(dir, name+"-*.png")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(png); err != nil {
		_ = f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

// truncate shortens s to at most n bytes, on a character boundary, saying that it did.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "\n… (truncated)"
}
