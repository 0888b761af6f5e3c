package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/browser"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// The supervisor's tests raise a water supply failure in this grid: routing summons the water
// bureau alone, a department with one unit, "water".
const (
	superGrid     = "xinhua-taoyuan-01"
	superCategory = "water-supply"
	superUnit     = "water"
)

// superPage is the address of a page of sys's console.
func superPage(sys *system.System, path string) string {
	return "http://" + sys.HTTPAddr() + system.ConsolePath + path
}

// superBrowser is a browser signed in to sys's console as the city's supervisor, on a phone,
// in English.
func superBrowser(t *testing.T, sys *system.System) context.Context {
	t.Helper()
	b := browser.New(t, browser.WithWindow(360, 740), browser.WithLanguage("en"))
	browser.Run(t, b, "open the sign-in link", chromedp.Navigate(signInLink(t, sys, Supervisor())))
	browser.WaitText(t, b, "header", "supervisor@city")
	return b
}

// superPart is the issue's part of the unit, as the supervisor reads the issue through the API.
func superPart(t *testing.T, sys *system.System, id, unit string) *whistlev1.Assignment {
	t.Helper()
	for _, a := range getIssue(t, Dial(t, sys, Supervisor()), id).GetIssue().GetAssignments() {
		if a.GetUnitId() == unit || a.GetDepartmentId() == unit {
			return a
		}
	}
	return nil
}

// superRaise raises a water supply failure and waits until the water bureau is summoned.
func superRaise(t *testing.T, sys *system.System, key string) string {
	t.Helper()
	id := raise(t, Dial(t, sys, GridWorker(superGrid)), key, superGrid, superCategory).GetId()
	waitForStatus(t, Dial(t, sys, Supervisor()), []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	return id
}

func TestASupervisorSeesABreachAppearOnTheBoardWithoutAReloadWhenAReportInDeadlinePasses(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real(), WithCatalog(QuickCatalog(t, 2*time.Second, time.Hour)))
	b := superBrowser(t, sys)
	browser.Run(t, b, "open the breach board", chromedp.Navigate(superPage(sys, "breaches")))
	browser.WaitText(t, b, "h1", "Breach board")
	browser.WaitText(t, b, "#breaches", "No breaches")
	// A mark on the page that a reload would wipe: the breach must arrive without one.
	browser.Run(t, b, "mark the page", chromedp.Evaluate[chromedp.Void](`window.stillThisPage = true`))

	// Nobody reports in: two seconds after dispatch the report-in deadline passes.
	id := raise(t, Dial(t, sys, GridWorker(superGrid)), "board-water", superGrid, superCategory).GetId()
	row := `#breaches li[data-issue="` + id + `"]`
	browser.WaitText(t, b, "#breaches", id)
	browser.WaitText(t, b, row, "Water Affairs Bureau")
	browser.WaitText(t, b, row, "Report-in deadline")
	browser.WaitText(t, b, row, "still overdue")
	browser.WaitText(t, b, row, "not escalated")
	browser.WaitText(t, b, "#breach-news", "New breach: "+id)
	same, err := chromedp.Run(b, chromedp.Evaluate[bool](`window.stillThisPage === true`))
	if err != nil || !same {
		t.Fatalf("the breach arrived with a reload of the page (%v)", err)
	}
	screenshot(t, b, "supervisor-breaches.png")
	browser.Run(t, b, "turn the phone into a wall screen", chromedp.EmulateViewport(1600, 900))
	screenshot(t, b, "supervisor-breaches-wall.png")

	// The board says what the API says.
	listed := breaches(t, Dial(t, sys, Supervisor()))
	if len(listed) != 1 || listed[0].GetIssueId() != id || listed[0].GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN {
		t.Errorf("the breaches the API lists: %v", listed)
	}
	// The row leads to the part's supervise page.
	browser.Run(t, b, "open the row's supervise page", chromedp.Click(chromedp.CSS(row+" a.sv-button")))
	browser.WaitText(t, b, "h1", "Supervise "+id)
	browser.WaitText(t, b, "#part-water", "Report-in deadline")
}

func TestASupervisorUrgesAPartFromTheConsoleAndTheSameFormSentTwiceUrgesOnce(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	id := superRaise(t, sys, "urge-water")
	b := superBrowser(t, sys)
	browser.Run(t, b, "open the supervise page", chromedp.Navigate(superPage(sys, "issues/"+id+"/supervise")))
	browser.WaitText(t, b, "h1", "Supervise "+id)
	part := "#part-" + superUnit

	// A blank note is refused on the page, naming the field, before any call.
	browser.Run(t, b, "send a blank urge", chromedp.Evaluate[chromedp.Void](`document.querySelector('`+part+` .sv-urge textarea').removeAttribute('required')`),
		chromedp.Click(chromedp.CSS(part+" .sv-urge button")))
	browser.WaitText(t, b, "main .error", "Please fill in “What you ask of the unit”")
	superWaitAddress(t, b, id+"/urge")

	browser.Run(t, b, "write the urge", chromedp.SendKeys(chromedp.CSS(part+" .sv-urge textarea"), "Report in by noon: the school has no water."))
	browser.Run(t, b, "urge", chromedp.Click(chromedp.CSS(part+" .sv-urge button")))
	browser.WaitText(t, b, "#done", "Urged.")
	superWaitAddress(t, b, "done=urged")
	browser.WaitText(t, b, part+" .sv-urges", "1")
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		if a := superPart(t, sys, id, superUnit); a.GetUrges() != 1 {
			return fmt.Errorf("the water bureau's part counts %d urges, want 1", a.GetUrges())
		}
		return nil
	})

	// One form, sent twice (a double click, a retry): its key makes it one urge.
	browser.Run(t, b, "send one form twice", chromedp.Evaluate[chromedp.Void](`(async () => {
		const form = document.querySelector('`+part+` .sv-urge');
		form.querySelector('textarea').value = 'Again, please.';
		for (let i = 0; i < 2; i++) {
			const r = await fetch(form.action, {method: 'POST', body: new URLSearchParams(new FormData(form))});
			if (!r.ok) { throw new Error('the urge answered ' + r.status); }
		}
	})()`, chromedp.EvalAwaitPromise))
	Settle(t, sys)
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		if a := superPart(t, sys, id, superUnit); a.GetUrges() != 2 {
			return fmt.Errorf("the water bureau's part counts %d urges, want 2", a.GetUrges())
		}
		return nil
	})
}

func TestASupervisorApprovesAPendingExtensionFromTheConsoleWithADeadlineOfTheirOwn(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	id := superRaise(t, sys, "extension-water")
	resolveBy := superPart(t, sys, id, superUnit).GetResolveBy().AsTime()
	if _, err := Dial(t, sys, Officer(superUnit)).Department.RequestExtension(t.Context(), &whistlev1.RequestExtensionRequest{IssueId: id,
		Proposed: timestamppb.New(resolveBy.Add(24 * time.Hour)), Reason: "a pump is on order"}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		if superPart(t, sys, id, superUnit).GetExtensionRequested() == nil {
			return fmt.Errorf("the request is not on the issue yet")
		}
		return nil
	})
	// The page lists what escalation has applied, which may come a moment after the issue.
	waitPendingExtensions(t, Dial(t, sys, Supervisor()), id)
	b := superBrowser(t, sys)
	browser.Run(t, b, "open the extension requests", chromedp.Navigate(superPage(sys, "extensions")))
	browser.WaitText(t, b, "#extensions", id)
	browser.WaitText(t, b, `#extensions li[data-issue="`+id+`"]`, "a pump is on order")
	browser.Run(t, b, "open the request", chromedp.Click(chromedp.CSS(`#extensions li[data-issue="`+id+`"] a.sv-button`)))
	part := "#part-" + superUnit
	superWaitAddress(t, b, id+"/supervise")
	browser.WaitText(t, b, part, "Extension requested")

	// The supervisor grants twelve hours rather than the day asked for, in the city's time.
	cat, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	granted := resolveBy.Add(12 * time.Hour).Truncate(time.Minute)
	screenshot(t, b, "supervisor-supervise.png")
	browser.Run(t, b, "choose the new deadline", chromedp.SetValue(chromedp.CSS(part+` input[name="granted"]`), granted.In(cat.TimeZone()).Format("2006-01-02T15:04")))
	browser.Run(t, b, "approve", chromedp.Click(chromedp.CSS(part+" button.sv-approve")))
	browser.WaitText(t, b, "#done", "The extension is approved.")
	superWaitAddress(t, b, "done=approved")
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		a := superPart(t, sys, id, superUnit)
		d := a.GetExtensionDecided()
		if a.GetExtensionRequested() != nil || !d.GetApproved() || d.GetDecidedBy() != Supervisor().Subject || !a.GetResolveBy().AsTime().Equal(granted) {
			return fmt.Errorf("the part after the approval: resolve by %s, pending %v, decided %v; want resolve by %s",
				a.GetResolveBy().AsTime(), a.GetExtensionRequested(), d, granted)
		}
		return nil
	})
	browser.WaitText(t, b, part, "extension (Resolve deadline) approved")
	browser.Run(t, b, "open the extension requests again", chromedp.Navigate(superPage(sys, "extensions")))
	browser.WaitText(t, b, "#extensions", "No extension request waits")
}

func TestTheScorecardsPageShowsTheDepartmentsFiguresForAPeriodWithAChart(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	id := superRaise(t, sys, "scorecard-water")
	cat, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(cat.TimeZone())
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, cat.TimeZone())
	super := Dial(t, sys, Supervisor())
	wait.For(t, waitTotal, 100*time.Millisecond, func() error {
		for _, s := range scoreCards(t, super, whistlev1.ScorecardKind_SCORECARD_KIND_DEPARTMENT, superUnit, today, today.AddDate(0, 0, 1)).GetScorecards() {
			if s.GetDispatched() == 1 {
				return nil
			}
		}
		return fmt.Errorf("the water bureau's scorecard does not count %s yet", id)
	})
	b := superBrowser(t, sys)
	browser.Run(t, b, "open the scorecards", chromedp.Navigate(superPage(sys, "scorecards")))
	browser.WaitText(t, b, "h1", "Scorecards")
	day := today.Format("2006-01-02")
	browser.Run(t, b, "choose today, by department", chromedp.SetValue(chromedp.CSS("#sc-from"), day), chromedp.SetValue(chromedp.CSS("#sc-to"), day),
		chromedp.SetValue(chromedp.CSS("#sc-kind"), "department"), chromedp.Click(chromedp.CSS(`form.sv-inline button`)))
	superWaitAddress(t, b, "kind=department&from="+day+"&to="+day)
	row := `#scorecards tr[data-id="water"]`
	browser.WaitText(t, b, row, "Water Affairs Bureau")
	browser.WaitText(t, b, row, "small sample")
	browser.WaitText(t, b, row, "0.0 %") // reported in: none of one part
	// The chart is drawn by the vendored library, which the page's policy lets load.
	if drawn, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.querySelector('#scorecard-chart')?.dataset.drawn === 'true'`)); err != nil || !drawn {
		t.Errorf("the chart was not drawn (%v)", err)
	}
	screenshot(t, b, "supervisor-scorecards.png")

	browser.Run(t, b, "group by street", chromedp.SetValue(chromedp.CSS("#sc-kind"), "street"), chromedp.Click(chromedp.CSS(`form.sv-inline button`)))
	superWaitAddress(t, b, "kind=street")
	browser.WaitText(t, b, `#scorecards tr[data-id="xinhua"]`, "Xinhua Street")
	// A period that ends before it begins is refused on the page, saying so.
	browser.Run(t, b, "end the period before it begins", chromedp.SetValue(chromedp.CSS("#sc-from"), today.AddDate(0, 0, 1).Format("2006-01-02")),
		chromedp.Click(chromedp.CSS(`form.sv-inline button`)))
	browser.WaitText(t, b, "main .error", "The end date cannot come before the start date")
}

func TestTheBreachBoardIsRefusedToAnOfficerAndAGridWorkerAndShownToADispatcherWithoutTheSupervisorsForms(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	for _, p := range []struct {
		who  authx.Principal
		role string
	}{{Officer(superUnit), "duty officer"}, {GridWorker(superGrid), "grid worker"}} {
		client := superClient(t, sys, p.who)
		for _, path := range []string{"breaches", "breaches/events", "scorecards", "extensions"} {
			if page := get(t, client, superPage(sys, path), http.StatusForbidden); !strings.Contains(page, "This page is not open to a "+p.role) {
				t.Errorf("%s of a %s: %s", path, p.role, page)
			}
		}
	}
	dispatcher := superClient(t, sys, authx.Principal{Subject: "dispatcher@city", Role: authx.RoleDispatcher, Scope: authx.CityScope})
	if page := get(t, dispatcher, superPage(sys, "breaches"), http.StatusOK); !strings.Contains(page, "Breach board") || strings.Contains(page, "Scorecards") {
		t.Errorf("a dispatcher's board: %s", page)
	}
	get(t, dispatcher, superPage(sys, "scorecards"), http.StatusForbidden)
	// Nobody signed in is asked to sign in.
	get(t, &http.Client{}, superPage(sys, "breaches"), http.StatusUnauthorized)
}

// superWaitAddress waits until the page's address contains want and the page has loaded, its
// scripts run: until the page a form asked for has replaced the one it was sent from.
func superWaitAddress(t *testing.T, b context.Context, want string) {
	t.Helper()
	wait.For(t, browser.Timeout, 50*time.Millisecond, func() error {
		u, err := chromedp.Run(b, chromedp.Location())
		if err != nil || !strings.Contains(u, want) {
			return fmt.Errorf("the page is %s, not one whose address has %q (%v)", u, want, err)
		}
		if state, err := chromedp.Run(b, chromedp.Evaluate[string](`document.readyState`)); err != nil || state != "complete" {
			return fmt.Errorf("the page %s is %s (%v)", u, state, err)
		}
		return nil
	})
}

// superClient is an HTTP client signed in to sys's console as p, in English.
func superClient(t *testing.T, sys *system.System, p authx.Principal) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Transport: englishTransport{}}
	resp, err := client.Get(signInLink(t, sys, p))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signing in as %s: %d", p.Subject, resp.StatusCode)
	}
	return client
}

// englishTransport asks for English pages.
type englishTransport struct{}

// RoundTrip sends r asking for English.
func (englishTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", "en")
	return http.DefaultTransport.RoundTrip(r)
}
