package systemtest

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/browser"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// signInLink is a one-time link into sys's console for p, as whistle login-link prints it.
func signInLink(t *testing.T, sys *system.System, p authx.Principal) string {
	t.Helper()
	link, err := sys.Authority().MintLink(p, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + sys.HTTPAddr() + system.ConsolePath + "login?link=" + url.QueryEscape(link)
}

// screenshot saves the page as a test artefact: in $WHISTLE_SCREENSHOTS when it is set (the
// README's pictures come from there), else in the test's own folder.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("WHISTLE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	browser.Screenshot(t, ctx, filepath.Join(dir, name))
}

func TestAnOfficerSignsInWithALinkSeesANewAssignmentArriveLiveAndAcknowledgesIt(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	link := signInLink(t, sys, Officer("water"))
	officer := browser.New(t, browser.WithWindow(360, 740), browser.WithLanguage("en"))
	browser.Run(t, officer, "open the sign-in link", chromedp.Navigate(link))
	browser.WaitText(t, officer, "h1", "Inbox")
	browser.WaitText(t, officer, "#inbox", "Nothing waits for you")
	browser.WaitText(t, officer, "#duty", "On duty: ")
	// A mark on the page that a reload would wipe: the assignment must arrive without one.
	browser.Run(t, officer, "mark the page and turn the alert on", chromedp.Evaluate[chromedp.Void](`window.stillThisPage = true`),
		chromedp.Click(chromedp.CSS("#alert-toggle")))
	browser.WaitText(t, officer, "#alert-toggle", "on")

	worker := Dial(t, sys, GridWorker("xinhua-taoyuan-01"))
	id := raise(t, worker, "console-drain", "xinhua-taoyuan-01", "blocked-drain").GetId()
	browser.WaitText(t, officer, "#inbox", id)
	browser.WaitText(t, officer, `li[data-issue="`+id+`"]`, "to acknowledge")
	same, err := chromedp.Run(officer, chromedp.Evaluate[bool](`window.stillThisPage === true`))
	if err != nil || !same {
		t.Fatalf("the assignment arrived with a reload of the page (%v)", err)
	}
	// The page counts its alert once htmx has settled the list, a moment after the list shows it.
	wait.For(t, browser.Timeout, 50*time.Millisecond, func() error {
		alerts, err := chromedp.Run(officer, chromedp.Evaluate[string](`document.getElementById("inbox").dataset.alerts || "0"`))
		if err != nil || alerts != "1" {
			return fmt.Errorf("the page gave %q alerts for the new assignment (%v), want 1", alerts, err)
		}
		return nil
	})
	screenshot(t, officer, "officer-inbox.png")

	browser.Run(t, officer, "acknowledge", chromedp.Click(chromedp.CSS(`li[data-issue="`+id+`"] button`)))
	browser.WaitText(t, officer, `li[data-issue="`+id+`"]`, "acknowledged")
	got := getIssue(t, Dial(t, sys, Supervisor()), id).GetIssue()
	for _, a := range got.GetAssignments() {
		if a.GetUnitId() == "water" && (a.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED || a.GetAcknowledgedBy() != roster.SampleOfficer("water")) {
			t.Errorf("water's part after the console's acknowledge: %v", a)
		}
	}
	browser.Run(t, officer, "open the issue", chromedp.Navigate("http://"+sys.HTTPAddr()+system.ConsolePath+"issues/"+id))
	browser.WaitText(t, officer, "#timeline", "Raised in xinhua-taoyuan-01")
	browser.WaitText(t, officer, "#timeline", roster.SampleOfficer("water"))

	// Resolve with a photo from the site.
	photo := filepath.Join(t.TempDir(), "cleared.png")
	writePNG(t, photo)
	browser.Run(t, officer, "resolve with a photo",
		chromedp.SendKeys(chromedp.CSS("#resolve-note"), "Drain cleared and flushed"),
		chromedp.SetUploadFiles(chromedp.CSS("#resolve-photos"), []string{photo}),
		chromedp.Click(chromedp.CSS(`form[action$="/resolve"] button`)))
	browser.WaitText(t, officer, "#timeline", "Drain cleared and flushed")
	got = getIssue(t, Dial(t, sys, Supervisor()), id).GetIssue()
	for _, a := range got.GetAssignments() {
		if a.GetUnitId() == "water" && (a.GetStatus() != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED || len(a.GetPhotos()) != 1) {
			t.Errorf("water's part after the console's resolve: %v", a)
		}
	}

	// The link signs in once: a second browser that opens it is refused.
	other := browser.New(t, browser.WithLanguage("en"))
	browser.Run(t, other, "open the link again", chromedp.Navigate(link))
	browser.WaitText(t, other, "main", "used already")
}

func TestAConsolePageIsRefusedToTheOtherRolesAndAFormWithoutItsTokenChangesNothing(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	worker := browser.New(t, browser.WithLanguage("zh-CN"))
	browser.Run(t, worker, "sign in as a grid worker", chromedp.Navigate(signInLink(t, sys, GridWorker("xinhua-taoyuan-01"))))
	browser.WaitText(t, worker, "h1", "我的网格")
	browser.Run(t, worker, "open the officers' inbox", chromedp.Navigate("http://"+sys.HTTPAddr()+system.ConsolePath+"inbox"))
	browser.WaitText(t, worker, "main", "这个页面不对网格员开放")

	// Without a session, a page asks for a sign-in link.
	resp, err := http.Get("http://" + sys.HTTPAddr() + system.ConsolePath + "inbox")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the inbox without a session: %d, want 401", resp.StatusCode)
	}

	// An officer's session, driven by plain HTTP: an acknowledge without the form's token is
	// refused and writes nothing.
	drain := raise(t, Dial(t, sys, GridWorker("xinhua-taoyuan-01")), "csrf-drain", "xinhua-taoyuan-01", "blocked-drain").GetId()
	waitForStatus(t, Dial(t, sys, Supervisor()), []string{drain}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar}
	resp, err = client.Get(signInLink(t, sys, Officer("water")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != system.ConsolePath+"inbox" {
		t.Fatalf("signing in led to %s with %d", resp.Request.URL, resp.StatusCode)
	}
	Settle(t, sys)
	before := StreamMessages(t, sys)
	resp, err = client.PostForm("http://"+sys.HTTPAddr()+system.ConsolePath+"issues/"+drain+"/acknowledge", url.Values{"csrf": {"forged"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an acknowledge with a forged form token: %d, want 403", resp.StatusCode)
	}
	// A form larger than any form may be is refused before anything reads it whole. (A form
	// that is not multipart is bounded at 10 MB by net/http itself.)
	big, err := http.NewRequest(http.MethodPost, "http://"+sys.HTTPAddr()+system.ConsolePath+"issues/"+drain+"/resolve",
		io.MultiReader(strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"big.png\"\r\n\r\n"),
			io.LimitReader(zeros{}, 60<<20)))
	if err != nil {
		t.Fatal(err)
	}
	big.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	if resp, err = client.Do(big); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 60 MB form: %d, want 413", resp.StatusCode)
	}
	Settle(t, sys)
	if after := StreamMessages(t, sys); after != before {
		t.Errorf("refused forms wrote %d events", after-before)
	}
	// Signing out, with the form's token, ends the session: its cookie no longer opens a page.
	inbox := "http://" + sys.HTTPAddr() + system.ConsolePath + "inbox"
	page := get(t, client, inbox, http.StatusOK)
	_, rest, ok := strings.Cut(page, `name="csrf" value="`)
	token, _, _ := strings.Cut(rest, `"`)
	if !ok || token == "" {
		t.Fatalf("the inbox has no form token: %s", page)
	}
	resp, err = client.PostForm("http://"+sys.HTTPAddr()+system.ConsolePath+"logout", url.Values{"csrf": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("sign out: %d", resp.StatusCode)
	}
	get(t, client, inbox, http.StatusUnauthorized)
}

// get reads a page with client and fails the test unless it answers want.
func get(t *testing.T, client *http.Client, u string, want int) string {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", u, resp.StatusCode, want, b)
	}
	return string(b)
}

func TestADispatcherDispatchesAnIssueWaitingAtTheDeskFromTheConsole(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	waiting := raise(t, Dial(t, sys, GridWorker("xinhua-taoyuan-01")), "console-desk", "xinhua-taoyuan-01", "other").GetId()
	waitForStatus(t, Dial(t, sys, Supervisor()), []string{waiting}, whistlev1.IssueStatus_ISSUE_STATUS_AWAITING_DISPATCH)

	dispatcher := browser.New(t, browser.WithWindow(360, 740), browser.WithLanguage("en"))
	browser.Run(t, dispatcher, "sign in as the city's dispatcher", chromedp.Navigate(signInLink(t, sys,
		authx.Principal{Subject: "dispatcher@city", Role: authx.RoleDispatcher, Scope: authx.CityScope})))
	browser.WaitText(t, dispatcher, "h1", "Dispatch desk")
	browser.WaitText(t, dispatcher, "#desk", waiting)
	card := `li[data-issue="` + waiting + `"]`
	browser.Run(t, dispatcher, "choose water as the lead and dispatch",
		chromedp.Click(chromedp.CSS(card+" details summary")),
		chromedp.SetValue(chromedp.CSS(card+` select[name="lead"]`), "water"),
		chromedp.SendKeys(chromedp.CSS(card+` input[name="note"]`), "a drain, by the photo"),
		chromedp.Click(chromedp.CSS(card+` form[action$="/dispatch"] button`)))
	browser.WaitText(t, dispatcher, "#timeline", "Routed by dispatcher@city to water (lead)")
	screenshot(t, dispatcher, "dispatcher-issue.png")

	is := waitForStatus(t, Dial(t, sys, Supervisor()), []string{waiting}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[waiting]
	if len(is.GetAssignments()) == 0 || is.GetAssignments()[len(is.GetAssignments())-1].GetDepartmentId() != "water" {
		t.Errorf("after the console's dispatch the issue's parts are %v; want water's", is.GetAssignments())
	}
}

// writePNG writes a small photo, as a phone's camera would give one.
func writePNG(t *testing.T, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := range 64 {
		for y := range 48 {
			img.Set(x, y, color.RGBA{R: uint8(x * 4), G: uint8(y * 5), B: 90, A: 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func TestASupervisorsMapDrawsTheGridsFromTheirBoundariesWithWhatIsOpenInEach(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	id := raise(t, Dial(t, sys, GridWorker("xinhua-taoyuan-01")), "map-drain", "xinhua-taoyuan-01", "blocked-drain").GetId()
	waitForStatus(t, Dial(t, sys, Supervisor()), []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)

	supervisor := browser.New(t, browser.WithWindow(1280, 800), browser.WithLanguage("en"))
	browser.Run(t, supervisor, "sign in as the city's supervisor and open the map",
		chromedp.Navigate(signInLink(t, sys, Supervisor())), chromedp.Navigate("http://"+sys.HTTPAddr()+system.ConsolePath+"map"))
	browser.WaitText(t, supervisor, "h1", "Map of the grids")
	browser.WaitText(t, supervisor, "#map-summary", "1 open issues")
	drawn, err := chromedp.Run(supervisor, chromedp.Evaluate[string](`document.getElementById("map").dataset.drawn || ""`))
	if err != nil || drawn == "" || drawn == "0" {
		t.Fatalf("the map drew %q grids (%v)", drawn, err)
	}
	open, err := chromedp.Run(supervisor, chromedp.Evaluate[string](`(document.querySelector('path[data-grid="xinhua-taoyuan-01"]') || {getAttribute: () => "none"}).getAttribute("data-open")`))
	if err != nil || open != "1" {
		t.Errorf("xinhua-taoyuan-01 is drawn with %q open issues (%v), want 1", open, err)
	}
	screenshot(t, supervisor, "supervisor-map.png")
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
