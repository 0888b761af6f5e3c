package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/browser"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// gridTaoyuan is the grid of the grid worker in these tests.
const gridTaoyuan = "xinhua-taoyuan-01"

// gridTaoyuanGarden is a point in gridTaoyuan that lies in the compound taoyuan-garden.
var gridTaoyuanGarden = struct{ lat, long float64 }{22.7350, 110.3020}

// gridDrainPNG writes a PNG of width×height, a photo of a drain as far as intake can tell, to a
// file of the test's own and returns its path and bytes.
func gridDrainPNG(t *testing.T, name string, width, height int) (string, []byte) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for x := range width {
		for y := range height {
			img.Set(x, y, color.RGBA{uint8(10 * x), uint8(15 * y), 90, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, b.Bytes()
}

// gridPageURL is the grid worker's page of sys.
func gridPageURL(sys *system.System) string {
	return "http://" + sys.HTTPAddr() + system.ConsolePath + "grid"
}

// gridSignIn opens a grid worker's sign-in link in a new browser of 360×740 in lang and
// goes to the grid worker's page.
func gridSignIn(t *testing.T, sys *system.System, lang string) context.Context {
	t.Helper()
	worker := browser.New(t, browser.WithWindow(360, 740), browser.WithLanguage(lang))
	browser.Run(t, worker, "sign in as the grid worker", chromedp.Navigate(signInLink(t, sys, GridWorker(gridTaoyuan))))
	browser.Run(t, worker, "open the grid worker's page", chromedp.Navigate(gridPageURL(sys)))
	return worker
}

// gridIssuesRaisedWith returns the issues of the grid whose text is text, as a supervisor lists
// them.
func gridIssuesRaisedWith(t *testing.T, c Clients, text string) []*whistlev1.Issue {
	t.Helper()
	all := allPages(t, "the grid's issues", func(token string) ([]*whistlev1.Issue, string, error) {
		res, err := c.Intake.ListIssues(t.Context(), &whistlev1.ListIssuesRequest{AreaId: gridTaoyuan, PageSize: 200, PageToken: token})
		return res.GetIssues(), res.GetNextPageToken(), err
	})
	var out []*whistlev1.Issue
	for _, is := range all {
		if is.GetText() == text {
			out = append(out, is)
		}
	}
	return out
}

func TestAGridWorkerRaisesABlockedDrainWithAPhotoAndTheirLocationFromAPhone(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	worker := gridSignIn(t, sys, "en")
	browser.WaitText(t, worker, "h1", "My grid")

	// The phone's location is the point in Taoyuan Garden, and the page may read it.
	lat, long, accuracy := gridTaoyuanGarden.lat, gridTaoyuanGarden.long, 12.0
	browser.Run(t, worker, "allow the location and set it", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: "geolocation"}, Setting: cdpbrowser.PermissionSettingGranted,
			Origin: "http://" + sys.HTTPAddr()}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, emulation.SetGeolocationOverride, emulation.SetGeolocationOverrideParams{
			Latitude: &lat, Longitude: &long, Accuracy: &accuracy})
		return err
	}))

	// Two shots of the camera, the first of them blurred (12 px) and removed: the drain's (24 px)
	// is the one photo sent.
	blurred, _ := gridDrainPNG(t, "blurred.png", 12, 12)
	photo, _ := gridDrainPNG(t, "drain.png", 24, 16)
	const text = "Drain blocked by leaves at the school gate; water over the pavement."
	browser.Run(t, worker, "fill in the raise form",
		chromedp.SetValue(chromedp.CSS("#category"), "blocked-drain"),
		chromedp.Click(chromedp.CSS("#urgency-urgent")),
		chromedp.SendKeys(chromedp.CSS("#text"), text),
		chromedp.SetUploadFiles(chromedp.CSS("input[type=file]"), []string{blurred}),
		chromedp.SetUploadFiles(chromedp.CSS("input[type=file]"), []string{photo}))
	browser.WaitText(t, worker, "#photo-previews", "Remove photo 2")
	browser.Run(t, worker, "remove the blurred shot, and use the phone's location",
		chromedp.Click(chromedp.CSS("#photo-previews li:first-child button")),
		chromedp.Click(chromedp.CSS("#locate")))
	browser.WaitText(t, worker, "#place-status", "Located at 22.735000, 110.302000")
	if _, _, pins := gridPlace(t, worker); pins != 1 {
		t.Errorf("the map shows %d pins at the location found; want 1", pins)
	}
	if n, err := chromedp.Run(worker, chromedp.Evaluate[int](`document.querySelector("#photos").files.length`)); err != nil || n != 1 {
		t.Fatalf("after a removal the form holds %d photos (%v); want 1", n, err)
	}
	screenshot(t, worker, "grid-worker.png")

	browser.Run(t, worker, "raise it", chromedp.Click(chromedp.CSS("#raise-submit")))
	id := raisedIssue(t, worker, "Blocked drain")

	is := getIssue(t, Dial(t, sys, Supervisor()), id).GetIssue()
	if is.GetGridId() != gridTaoyuan || is.GetCategoryId() != "blocked-drain" || is.GetText() != text ||
		is.GetUrgency() != whistlev1.Urgency_URGENCY_URGENT || is.GetRaisedBy() != GridWorker(gridTaoyuan).Subject {
		t.Errorf("the console raised %s in %s, %s, %s, %q by %s", id, is.GetGridId(), is.GetCategoryId(), is.GetUrgency(), is.GetText(), is.GetRaisedBy())
	}
	if len(is.GetPhotos()) != 1 || is.GetPhotos()[0].GetContentType() != "image/png" {
		t.Errorf("the issue's photos are %v; want the one PNG", is.GetPhotos())
	}
	if loc := is.GetLocation(); loc.GetLatitude() != lat || loc.GetLongitude() != long || is.GetCompoundId() != "taoyuan-garden" {
		t.Errorf("the issue is at %v in compound %q; want the phone's point, in taoyuan-garden", loc, is.GetCompoundId())
	}

	// The grid's list shows it, and its page shows the photo as the browser decodes it.
	browser.Run(t, worker, "back to the grid's page", chromedp.Navigate(gridPageURL(sys)))
	browser.WaitText(t, worker, `#grid-issues li[data-issue="`+id+`"]`, "raised by me")
	browser.Run(t, worker, "open the issue's photos", chromedp.Click(chromedp.CSS(`li[data-issue="`+id+`"] p:last-child a`)))
	browser.WaitText(t, worker, "h1", id)
	browser.Run(t, worker, "wait for the photo", chromedp.WaitVisible(chromedp.CSS(".thumbs img")))
	width, err := chromedp.Run(worker, chromedp.Evaluate[int](`new Promise(done => {
		const img = document.querySelector(".thumbs img");
		if (img.complete) { done(img.naturalWidth); } else { img.onload = () => done(img.naturalWidth); img.onerror = () => done(0); }
	})`, chromedp.EvalAwaitPromise))
	if err != nil || width != 24 {
		t.Errorf("the issue's photo shows %d pixels wide (%v); want the 24 of the PNG raised", width, err)
	}
}

// gridTaoyuanBounds is gridTaoyuan's boundary, a rectangle in the catalog (city.yaml).
var gridTaoyuanBounds = struct{ West, South, East, North float64 }{110.3000, 22.7328, 110.3116, 22.7400}

// gridMapTarget is where a point lies on the raise form's map, in the viewport's pixels, and the
// degrees of latitude and longitude that one pixel spans there.
type gridMapTarget struct{ X, Y, Lat, Long float64 }

// gridOnTheMap scrolls the raise form's map into view and finds the point on it from the grid's
// boundary as the map draws it: across a rectangle so small, Web Mercator's pixels are as good as
// linear in latitude as well as in longitude.
func gridOnTheMap(t *testing.T, worker context.Context, lat, long float64) gridMapTarget {
	t.Helper()
	bounds, err := json.Marshal(gridTaoyuanBounds)
	if err != nil {
		t.Fatal(err)
	}
	at, err := chromedp.Run(worker, chromedp.Evaluate[gridMapTarget](fmt.Sprintf(`(() => {
		document.getElementById("pin-map").scrollIntoView({block: "center"});
		const r = document.querySelector("#pin-map path").getBoundingClientRect(), b = %s;
		return {X: r.left + (%v - b.West) / (b.East - b.West) * r.width, Y: r.top + (b.North - %v) / (b.North - b.South) * r.height,
			Lat: (b.North - b.South) / r.height, Long: (b.East - b.West) / r.width};
	})()`, bounds, long, lat)))
	if err != nil {
		t.Fatalf("finding %v, %v on the map: %v", lat, long, err)
	}
	return at
}

// gridPlace is the raise form's point as its inputs hold it, and how many pins the map shows.
func gridPlace(t *testing.T, worker context.Context) (lat, long string, pins int) {
	t.Helper()
	place, err := chromedp.Run(worker, chromedp.Evaluate[struct {
		Lat, Long string
		Pins      int
	}](`({Lat: document.getElementById("latitude").value, Long: document.getElementById("longitude").value,
		Pins: document.querySelectorAll("#pin-map .grid-pin").length})`))
	if err != nil {
		t.Fatalf("reading the form's place: %v", err)
	}
	return place.Lat, place.Long, place.Pins
}

func TestAGridWorkerPinsTheRaiseOnTheMapOfTheirGridAndTheIssueIsRecordedAtThatPoint(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	worker := gridSignIn(t, sys, "en")
	browser.WaitText(t, worker, "h1", "My grid")
	browser.Run(t, worker, "wait for the map of the grid, drawn from its boundary",
		chromedp.WaitVisible(chromedp.CSS(`#pin-map[data-drawn="1"]`)), chromedp.WaitReady(chromedp.CSS("#pin-map path")))
	label, err := chromedp.Run(worker, chromedp.Evaluate[string](`document.getElementById("pin-map").getAttribute("aria-label")`))
	if err != nil || !strings.Contains(label, gridTaoyuan) {
		t.Errorf("the map is labelled %q (%v); want its grid named", label, err)
	}
	if wide, err := chromedp.Run(worker, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || wide > 360 {
		t.Errorf("the page is %d pixels wide on a phone of 360 (%v)", wide, err)
	}

	// The keyboard's way: Enter on the map pins its centre, which is in the grid.
	browser.Run(t, worker, "pin the map's centre with the keyboard", chromedp.Focus(chromedp.CSS("#pin-map")), chromedp.KeyEvent("\r"))
	browser.WaitText(t, worker, "#place-status", "Pinned on the map at ")
	lat, long, pins := gridPlace(t, worker)
	if la, lo := parseCoordinate(t, lat), parseCoordinate(t, long); pins != 1 || la < gridTaoyuanBounds.South || la > gridTaoyuanBounds.North ||
		lo < gridTaoyuanBounds.West || lo > gridTaoyuanBounds.East {
		t.Errorf("Enter on the map pinned %s, %s with %d pins; want one pin in the grid", lat, long, pins)
	}

	// "Do not use the location" takes the pin away.
	browser.Run(t, worker, "clear the place", chromedp.Click(chromedp.CSS("#unlocate")))
	browser.WaitText(t, worker, "#place-status", "No location")
	if lat, long, pins := gridPlace(t, worker); lat != "" || long != "" || pins != 0 {
		t.Errorf("after clearing, the form holds %q, %q with %d pins", lat, long, pins)
	}

	// A tap somewhere in the grid, then one on Taoyuan Garden: the one pin moves there.
	elsewhere := gridOnTheMap(t, worker, 22.7390, 110.3100)
	browser.Run(t, worker, "tap the grid's north-east", chromedp.MouseClickXY(elsewhere.X, elsewhere.Y))
	browser.WaitText(t, worker, "#place-status", "Pinned on the map at 22.73")
	first, _, _ := gridPlace(t, worker)
	garden := gridOnTheMap(t, worker, gridTaoyuanGarden.lat, gridTaoyuanGarden.long)
	browser.Run(t, worker, "tap Taoyuan Garden", chromedp.MouseClickXY(garden.X, garden.Y))
	moved, err := chromedp.Run(worker, chromedp.Poll[bool](`document.getElementById("latitude").value !== `+strconv.Quote(first)))
	if err != nil || !moved {
		t.Fatalf("the second tap did not move the point from %s (%v)", first, err)
	}
	lat, long, pins = gridPlace(t, worker)
	browser.WaitText(t, worker, "#place-status", "Pinned on the map at "+lat+", "+long)
	la, lo := parseCoordinate(t, lat), parseCoordinate(t, long)
	if pins != 1 || math.Abs(la-gridTaoyuanGarden.lat) > 2*garden.Lat || math.Abs(lo-gridTaoyuanGarden.long) > 2*garden.Long {
		t.Errorf("the tap on %v, %v pinned %s, %s with %d pins; want one pin within 2 pixels (%.6f°, %.6f°)",
			gridTaoyuanGarden.lat, gridTaoyuanGarden.long, lat, long, pins, 2*garden.Lat, 2*garden.Long)
	}
	if len(strings.TrimPrefix(lat, "22.")) != 6 || len(strings.TrimPrefix(long, "110.")) != 6 {
		t.Errorf("the point is written %s, %s; want 6 decimals", lat, long)
	}
	screenshot(t, worker, "grid-worker-pin.png")

	const text = "Drain blocked at the garden's gate, pinned on the map."
	browser.Run(t, worker, "fill in the rest and raise",
		chromedp.SetValue(chromedp.CSS("#category"), "blocked-drain"),
		chromedp.SendKeys(chromedp.CSS("#text"), text),
		chromedp.Click(chromedp.CSS("#raise-submit")))
	id := raisedIssue(t, worker, "Blocked drain")
	is := getIssue(t, Dial(t, sys, Supervisor()), id).GetIssue()
	if loc := is.GetLocation(); loc.GetLatitude() != la || loc.GetLongitude() != lo || is.GetGridId() != gridTaoyuan ||
		is.GetCompoundId() != "taoyuan-garden" || is.GetText() != text {
		t.Errorf("the issue %s is at %v in %s, compound %q; want the pin's %s, %s in %s, taoyuan-garden",
			id, loc, is.GetGridId(), is.GetCompoundId(), lat, long, gridTaoyuan)
	}
}

// parseCoordinate reads a coordinate as the form holds it.
func parseCoordinate(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("the form's coordinate %q: %v", s, err)
	}
	return f
}

func TestTheSameRaiseFormSentTwiceAtOnceAndOnceMoreRaisesOneIssue(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	client := gridClient(t, sys, GridWorker(gridTaoyuan))
	form := get(t, client, gridPageURL(sys), http.StatusOK)
	csrf, requestID := gridFormValue(t, form, "csrf"), gridFormValue(t, form, "request_id")
	if !strings.Contains(form, `id="pin-map-box" hidden`) {
		t.Errorf("the map of the grid is not hidden from a page without script: %s", form)
	}
	_, photo := gridDrainPNG(t, "drain.png", 24, 16)
	const text = "Drain blocked at the market; the form was sent three times."

	// Two sends at once, as a double tap without the page's script; then a third, as a retry.
	send := func() (int, string) {
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		for k, v := range map[string]string{"csrf": csrf, "request_id": requestID, "category": "blocked-drain",
			"urgency": "normal", "text": text} {
			if err := w.WriteField(k, v); err != nil {
				t.Error(err)
			}
		}
		part, err := w.CreateFormFile("photos", "drain.png")
		if err == nil {
			_, err = part.Write(photo)
		}
		if err == nil {
			err = w.Close()
		}
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		resp, err := client.Post("http://"+sys.HTTPAddr()+system.ConsolePath+"raise", w.FormDataContentType(), &body)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("a send of the form: %d: %s", resp.StatusCode, page)
		}
		return resp.StatusCode, resp.Header.Get("Location")
	}
	var wg sync.WaitGroup
	var places [3]string
	for i := range 2 {
		wg.Go(func() { _, places[i] = send() })
	}
	wg.Wait()
	_, places[2] = send()
	if places[0] == "" || places[0] != places[1] || places[1] != places[2] {
		t.Errorf("the three sends led to %q; want one issue's page", places)
	}

	raised := gridIssuesRaisedWith(t, Dial(t, sys, Supervisor()), text)
	if len(raised) != 1 {
		t.Fatalf("the form sent three times raised %d issues; want 1", len(raised))
	}
	if len(raised[0].GetPhotos()) != 1 || !strings.HasSuffix(places[0], "/issues/"+raised[0].GetId()) {
		t.Errorf("the issue raised is %s with photos %v; the sends led to %s", raised[0].GetId(), raised[0].GetPhotos(), places[0])
	}
}

func TestARaiseWithoutTextIsRefusedOnThePageNamingTheTextAndWritesNothing(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	worker := gridSignIn(t, sys, "zh-CN")
	browser.WaitText(t, worker, "h1", "我的网格")
	Settle(t, sys)
	before := StreamMessages(t, sys)

	// Spaces pass the browser's own check of a required field; the console's finds no text.
	browser.Run(t, worker, "fill in everything but the text, and raise",
		chromedp.SetValue(chromedp.CSS("#category"), "blocked-drain"),
		chromedp.SendKeys(chromedp.CSS("#text"), "   "),
		chromedp.Click(chromedp.CSS("#raise-submit")))
	browser.WaitText(t, worker, "#text-error", "请填写事项描述")
	browser.WaitText(t, worker, "#raise-errors", "请填写事项描述")
	browser.WaitText(t, worker, "main .error", "没有上报")
	kept, err := chromedp.Run(worker, chromedp.Value(chromedp.CSS("#category")))
	if err != nil || kept != "blocked-drain" {
		t.Errorf("the refused form's category is %q (%v); want the one chosen kept", kept, err)
	}
	invalid, err := chromedp.Run(worker, chromedp.Evaluate[string](`document.querySelector("#text").getAttribute("aria-invalid")`))
	if err != nil || invalid != "true" {
		t.Errorf("the text's field is not marked invalid: %q (%v)", invalid, err)
	}

	Settle(t, sys)
	if after := StreamMessages(t, sys); after != before {
		t.Errorf("a refused raise wrote %d events", after-before)
	}
}

func TestAGridWorkerVerifiesAResolvedDrainOnSiteInTheBrowserAndRatesIt(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	super := Dial(t, sys, Supervisor())
	id := raise(t, Dial(t, sys, GridWorker(gridTaoyuan)), "console-verify", gridTaoyuan, "blocked-drain").GetId()
	is := waitForStatus(t, super, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[id]
	for _, a := range is.GetAssignments() {
		officer := Dial(t, sys, Officer(a.GetUnitId()))
		if _, err := officer.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := officer.Department.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "cleared by " + a.GetUnitId()}); err != nil {
			t.Fatal(err)
		}
	}
	waitForStatus(t, super, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)

	worker := gridSignIn(t, sys, "en")
	card := `#grid-issues li[data-issue="` + id + `"]`
	browser.WaitText(t, worker, card, "Verify on site")
	browser.Run(t, worker, "open the check on site", chromedp.Click(chromedp.CSS(card+" a.action")))
	browser.WaitText(t, worker, "#verify-title", "Verify on site")
	browser.WaitText(t, worker, "main", "cleared by water")

	// A fail needs its reason: spaces pass the browser's check, not the console's.
	browser.Run(t, worker, "fail it without a reason",
		chromedp.SendKeys(chromedp.CSS("#verify-fail-reason"), "  "),
		chromedp.Click(chromedp.CSS("#verify-fail button")))
	browser.WaitText(t, worker, "#verify-fail-error", "A fail needs its reason")
	if got := getIssue(t, super, id).GetIssue(); got.GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED {
		t.Fatalf("a fail without a reason left the issue %s", got.GetStatus())
	}

	browser.Run(t, worker, "pass it", chromedp.Click(chromedp.CSS("#verify-pass button")))
	browser.WaitText(t, worker, "#status", "closed")
	browser.WaitText(t, worker, "#verification", "Passed by "+GridWorker(gridTaoyuan).Subject)
	got := getIssue(t, super, id).GetIssue()
	if got.GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_CLOSED || !got.GetVerification().GetPassed() ||
		got.GetVerification().GetVerifiedBy() != GridWorker(gridTaoyuan).Subject {
		t.Errorf("after the console's pass the issue is %s, verified %v", got.GetStatus(), got.GetVerification())
	}

	// The grid worker raised it, so they rate it too.
	browser.Run(t, worker, "rate it 4 with a comment",
		chromedp.Click(chromedp.CSS("#rate-score-4")),
		chromedp.SendKeys(chromedp.CSS("#rate-comment"), "Quick work."),
		chromedp.Click(chromedp.CSS("#rate button[type=submit]")))
	browser.WaitText(t, worker, "#rating", "4 of 5")
	if r := getIssue(t, super, id).GetIssue().GetRating(); r.GetScore() != 4 || r.GetComment() != "Quick work." {
		t.Errorf("after the console's rating the issue's rating is %v", r)
	}
}

func TestAnOfficersSessionIsRefusedTheGridWorkersPagesAndCannotRaise(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	officer := gridClient(t, sys, Officer("water"))
	page := get(t, officer, gridPageURL(sys), http.StatusForbidden)
	if !strings.Contains(page, "这个页面不对值班员开放") {
		t.Errorf("the refusal does not say why: %s", page)
	}
	csrf := gridFormValue(t, get(t, officer, "http://"+sys.HTTPAddr()+system.ConsolePath+"inbox", http.StatusOK), "csrf")
	Settle(t, sys)
	before := StreamMessages(t, sys)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range map[string]string{"csrf": csrf, "request_id": "web-officer", "category": "blocked-drain", "text": "Not mine to raise"} {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := officer.Post("http://"+sys.HTTPAddr()+system.ConsolePath+"raise", w.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("an officer's raise: %d, want 403", resp.StatusCode)
	}
	Settle(t, sys)
	if after := StreamMessages(t, sys); after != before {
		t.Errorf("an officer's refused raise wrote %d events", after-before)
	}
	// Nobody signed in is asked to sign in.
	resp, err = http.Get(gridPageURL(sys))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the grid's page without a session: %d, want 401", resp.StatusCode)
	}
}

// gridClient is an HTTP client signed in to sys's console as p, that does not follow
// redirects after the sign-in, so that a test sees where a form leads.
func gridClient(t *testing.T, sys *system.System, p authx.Principal) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar}
	resp, err := client.Get(signInLink(t, sys, p))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signing in as %s: %d", p.Subject, resp.StatusCode)
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return client
}

// gridFormValue is the value of the first input named name in a page.
func gridFormValue(t *testing.T, page, name string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name="`+name+`" value="`)
	value, _, _ := strings.Cut(rest, `"`)
	if !ok || value == "" {
		t.Fatalf("the page has no %s: %s", name, page)
	}
	return value
}

// raisedIssue waits for the issue's page a raise leads to, titled with its category, and returns
// the case number its address names.
func raisedIssue(t *testing.T, worker context.Context, category string) string {
	t.Helper()
	browser.WaitText(t, worker, "h1", category)
	url, err := chromedp.Run(worker, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	_, id, ok := strings.Cut(url, system.ConsolePath+"issues/")
	if !ok || id == "" {
		t.Fatalf("the raise led to %s, not to an issue's page", url)
	}
	return id
}
