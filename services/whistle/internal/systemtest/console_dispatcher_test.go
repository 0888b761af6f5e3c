package systemtest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/browser"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

func TestADispatcherUnlinksADuplicateFromTheConsoleOnceAndItIsRoutedOnItsOwn(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	super := Dial(t, sys, Supervisor())
	raiser := Dial(t, sys, GridWorker(catalogCity))
	raiseAt := func(key, text string, at *whistlev1.Location) string {
		t.Helper()
		res, err := raiser.Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{RequestId: key, CategoryId: "blocked-drain",
			Urgency: normal, Text: text, Location: at})
		if err != nil {
			t.Fatalf("raise %s: %v", key, err)
		}
		return res.GetIssue().GetId()
	}
	// Raises 10 m from an open one of their category join it as duplicates.
	original := raiseAt("unlink-case", "Drain blocked at No. 3", taoyuanRoad)
	waitForStatus(t, super, []string{original}, routed)
	metoo := raiseAt("unlink-metoo", "Drain blocked across the road", tenMetresOn)
	again := raiseAt("unlink-again", "The drain again", tenMetresOn)
	for id, is := range waitForStatus(t, super, []string{metoo, again}, linked) {
		if is.GetLinkedTo() != original {
			t.Fatalf("the duplicate %s joined %q, want %s", id, is.GetLinkedTo(), original)
		}
	}
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		if d := getIssue(t, super, original).GetIssue().GetDuplicates(); !slices.Equal(d, []string{metoo, again}) {
			return fmt.Errorf("the case lists duplicates %v, want %s and %s", d, metoo, again)
		}
		return nil
	})
	Settle(t, sys) // routing's view holds the link too, so an unlink meets it
	issuePage := func(id string) string { return "http://" + sys.HTTPAddr() + system.ConsolePath + "issues/" + id }
	unlinkForm := `form[action="/console/issues/` + metoo + `/unlink"]`

	// A grid worker sees the link both ways, and no form to unlink; a POST of one is refused.
	worker := browser.New(t, browser.WithLanguage("zh-CN"))
	browser.Run(t, worker, "sign in as the grid's worker and open the duplicate",
		chromedp.Navigate(signInLink(t, sys, GridWorker("xinhua-taoyuan-01"))), chromedp.Navigate(issuePage(metoo)))
	browser.WaitText(t, worker, "#linked", "已并入案件 "+original)
	browser.Run(t, worker, "open the case", chromedp.Navigate(issuePage(original)))
	browser.WaitText(t, worker, "#duplicates", metoo)
	if forms, err := chromedp.Run(worker, chromedp.Evaluate[int](`document.querySelectorAll('form[action$="/unlink"]').length`)); err != nil || forms != 0 {
		t.Errorf("the grid worker's page of the case has %d unlink forms (%v), want none", forms, err)
	}
	browser.Run(t, worker, "open the duplicate again", chromedp.Navigate(issuePage(metoo)))
	browser.WaitText(t, worker, "#linked", original)
	if forms, err := chromedp.Run(worker, chromedp.Evaluate[int](`document.querySelectorAll('form[action$="/unlink"]').length`)); err != nil || forms != 0 {
		t.Errorf("the grid worker's page of the duplicate has %d unlink forms (%v), want none", forms, err)
	}

	// Refusals, by plain HTTP to see their status: each says what was wrong and writes nothing.
	workerHTTP := consoleClient(t, sys, GridWorker("xinhua-taoyuan-01"))
	desk := consoleClient(t, sys, authx.Principal{Subject: "dispatcher@city", Role: authx.RoleDispatcher, Scope: authx.CityScope})
	csrf := csrfOf(t, get(t, desk, issuePage(metoo), http.StatusOK))
	before := StreamMessages(t, sys)
	for _, tc := range []struct {
		name   string
		client *http.Client
		issue  string
		form   url.Values
		code   int
		says   string
	}{
		{"an unlink by a grid worker", workerHTTP, metoo, url.Values{"csrf": {csrfOf(t, get(t, workerHTTP, issuePage(metoo), http.StatusOK))}, "reason": {"not the same drain"}},
			http.StatusForbidden, "not open to a grid worker"},
		{"an unlink without a reason", desk, metoo, url.Values{"csrf": {csrf}, "reason": {""}}, http.StatusBadRequest, "Reason for unlinking"},
		{"an unlink with a reason too long", desk, metoo, url.Values{"csrf": {csrf}, "reason": {strings.Repeat("长", 501)}}, http.StatusBadRequest, "Reason for unlinking"},
		{"an unlink of a case that joined none", desk, original, url.Values{"csrf": {csrf}, "reason": {"not the same drain"}}, http.StatusConflict, "has not joined another case"},
		{"an unlink without the form's token", desk, metoo, url.Values{"reason": {"not the same drain"}}, http.StatusForbidden, "reload the page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := post(t, tc.client, issuePage(tc.issue)+"/unlink", tc.form)
			if code != tc.code || !strings.Contains(body, tc.says) {
				t.Errorf("got %d; want %d saying %q:\n%s", code, tc.code, tc.says, body)
			}
		})
	}
	// The dispatcher's refused page keeps the form, its reason field marked.
	if _, body, _ := post(t, desk, issuePage(metoo)+"/unlink", url.Values{"csrf": {csrf}, "reason": {" "}}); !strings.Contains(body, `aria-invalid="true"`) {
		t.Errorf("the refused form does not mark its reason field:\n%s", body)
	}

	// The dispatcher sees the link to the case, and on the case the duplicate with its form.
	dispatcher := browser.New(t, browser.WithWindow(360, 740), browser.WithLanguage("en"))
	browser.Run(t, dispatcher, "sign in as the city's dispatcher and open the case",
		chromedp.Navigate(signInLink(t, sys, authx.Principal{Subject: "dispatcher@city", Role: authx.RoleDispatcher, Scope: authx.CityScope})),
		chromedp.Navigate(issuePage(original)))
	browser.WaitText(t, dispatcher, `li[data-duplicate="`+metoo+`"]`, "Unlink from the case")
	browser.Run(t, dispatcher, "follow the link to the duplicate", chromedp.Click(chromedp.CSS(`li[data-duplicate="`+metoo+`"] a`)))
	browser.WaitText(t, dispatcher, "#linked", "This issue is a duplicate and joined case "+original)
	href, err := chromedp.Run(dispatcher, chromedp.Evaluate[string](`document.querySelector("#linked a").getAttribute("href")`))
	if err != nil || href != "/console/issues/"+original {
		t.Errorf("the duplicate's page links to %q (%v), want the case", href, err)
	}

	// A reason of blanks passes the browser's check and is refused, naming the field.
	browser.Run(t, dispatcher, "send the form with a reason of blanks",
		chromedp.Click(chromedp.CSS("#linked summary")),
		chromedp.SendKeys(chromedp.CSS(unlinkForm+" textarea"), "   "),
		chromedp.Click(chromedp.CSS(unlinkForm+" button")))
	browser.WaitText(t, dispatcher, ".error", "Reason for unlinking")
	Settle(t, sys)
	if after := StreamMessages(t, sys); after != before {
		t.Errorf("refused unlinks wrote %d events", after-before)
	}

	// The unlink, with the keyboard alone.
	browser.Run(t, dispatcher, "open the duplicate and unlink it with the keyboard",
		chromedp.Navigate(issuePage(metoo)),
		chromedp.Focus(chromedp.CSS("#linked summary")), chromedp.KeyEvent("\r"),
		chromedp.SendKeys(chromedp.CSS(unlinkForm+" textarea"), "another drain, across the road"),
		chromedp.Focus(chromedp.CSS(unlinkForm+" button")), chromedp.KeyEvent("\r"))
	browser.WaitText(t, dispatcher, "#done", "Unlinked")
	if linked, err := chromedp.Run(dispatcher, chromedp.Evaluate[bool](`document.getElementById("linked") !== null`)); err != nil || linked {
		t.Errorf("the page the unlink returns to still shows the link (%v)", err)
	}
	browser.WaitText(t, dispatcher, "#timeline", "Unlinked from case "+original+": another drain, across the road")
	screenshot(t, dispatcher, "dispatcher-unlinked.png")
	if n := unlinkedEvents(t, sys, metoo); n != 1 {
		t.Errorf("the stream holds %d IssueUnlinked for %s, want 1", n, metoo)
	}

	// Routing routes it as a case of its own, and the case no longer lists it.
	is := waitForStatus(t, super, []string{metoo}, routed)[metoo]
	if is.GetLinkedTo() != "" || len(is.GetAssignments()) == 0 || is.GetAssignments()[0].GetDepartmentId() != "water" {
		t.Errorf("after the unlink the issue is linked to %q with parts %v; want a case of its own led by water", is.GetLinkedTo(), is.GetAssignments())
	}
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		if d := getIssue(t, super, original).GetIssue().GetDuplicates(); !slices.Equal(d, []string{again}) {
			return fmt.Errorf("the case lists %v, want %s alone", d, again)
		}
		return nil
	})
	browser.Run(t, dispatcher, "open the issue again", chromedp.Navigate(issuePage(metoo)))
	browser.WaitText(t, dispatcher, "#status", "dispatched")

	// The form sent again finds it unlinked: the same answer, and no second unlink.
	code, _, to := post(t, desk, issuePage(metoo)+"/unlink", url.Values{"csrf": {csrf}, "reason": {"another drain, across the road"}})
	if code != http.StatusSeeOther || to != "/console/issues/"+metoo+"?done=unlinked" {
		t.Errorf("the form sent again: %d to %q; want 303 to the issue's page saying it is unlinked", code, to)
	}
	Settle(t, sys)
	if n := unlinkedEvents(t, sys, metoo); n != 1 {
		t.Errorf("after the form was sent again the stream holds %d IssueUnlinked for %s, want 1", n, metoo)
	}

	// A form sent twice at once (a double click): both answers say it is unlinked, once.
	answers := make(chan string, 2)
	for range 2 {
		go func() {
			resp, err := desk.PostForm(issuePage(again)+"/unlink", url.Values{"csrf": {csrf}, "reason": {"a different drain"}})
			if err != nil {
				answers <- err.Error()
				return
			}
			resp.Body.Close()
			answers <- fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("Location"))
		}()
	}
	for range 2 {
		if got, want := <-answers, fmt.Sprintf("%d /console/issues/%s?done=unlinked", http.StatusSeeOther, again); got != want {
			t.Errorf("a form sent twice at once was answered %q, want %q", got, want)
		}
	}
	Settle(t, sys)
	if n := unlinkedEvents(t, sys, again); n != 1 {
		t.Errorf("the form sent twice at once left %d IssueUnlinked for %s, want 1", n, again)
	}
}

// consoleClient is an HTTP client signed in to sys's console as p, asking for English pages and
// not following redirects, so that a test sees where a form leads.
func consoleClient(t *testing.T, sys *system.System, p authx.Principal) *http.Client {
	t.Helper()
	client := superClient(t, sys, p)
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return client
}

// csrfOf is the form token of a console page (every page's sign-out form carries it).
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name="csrf" value="`)
	token, _, _ := strings.Cut(rest, `"`)
	if !ok || token == "" {
		t.Fatalf("the page has no form token: %s", page)
	}
	return token
}

// post sends a form with client and returns the status, the page and where it redirects to.
func post(t *testing.T, client *http.Client, u string, form url.Values) (code int, body, location string) {
	t.Helper()
	resp, err := client.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// unlinkedEvents counts the IssueUnlinked events the stream holds for an issue.
func unlinkedEvents(t *testing.T, sys *system.System, id string) int {
	t.Helper()
	recs, err := sys.Deps().Log.Read(t.Context(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Event.GetUnlinked() != nil {
			n++
		}
	}
	return n
}
