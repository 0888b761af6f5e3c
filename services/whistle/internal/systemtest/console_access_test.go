package systemtest

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/browser"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// accessAudit lists what keeps a page from being read at 200 % zoom or used by keyboard and
// screen reader: a page wider than the window (read by scrolling sideways), a form field with no
// label, a link or button with no name, and an order of focus changed by a positive tabindex.
const accessAudit = `(() => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth + 1) {
    problems.push('the page is ' + root.scrollWidth + ' px wide in a window of ' + window.innerWidth);
  }
  const visible = el => el.offsetParent !== null || el.getClientRects().length > 0;
  const named = el => (el.getAttribute('aria-label') || '').trim() !== '' ||
    (el.getAttribute('aria-labelledby') || '').trim() !== '' || (el.getAttribute('title') || '').trim() !== '';
  const describe = el => el.outerHTML.slice(0, 120);
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (visible(el) && !(el.labels && el.labels.length > 0) && !named(el)) {
      problems.push('a field without a label: ' + describe(el));
    }
  }
  for (const el of document.querySelectorAll('a[href], button')) {
    const text = (el.textContent || '').trim() || Array.from(el.querySelectorAll('img[alt]')).map(i => i.alt).join('');
    if (visible(el) && text === '' && !named(el)) {
      problems.push('a link or button without a name: ' + describe(el));
    }
  }
  for (const el of document.querySelectorAll('[tabindex]')) {
    if (Number(el.getAttribute('tabindex')) > 0) {
      problems.push('a positive tabindex: ' + describe(el));
    }
  }
  return problems;
})()`

// TestEveryRolesPagesReadAt200PercentZoomAndAreUsableByKeyboard opens the main pages of each role
// in a window of 640 CSS pixels, which is what a 1280-pixel screen shows at 200 % zoom, with an
// issue on each so that the lists and forms are drawn, and requires of each page that it needs no
// sideways scrolling, that every field has a label and every control a name, that focus follows
// the page's order, and that the first Tab reaches the link that skips to the content.
func TestEveryRolesPagesReadAt200PercentZoomAndAreUsableByKeyboard(t *testing.T) {
	sys := Start(t, t.TempDir(), clock.Real())
	id := superRaise(t, sys, "zoom-1")
	resolved := superRaise(t, sys, "zoom-2")
	officer := Dial(t, sys, Officer(superUnit))
	if _, err := officer.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: resolved}); err != nil {
		t.Fatal(err)
	}
	if _, err := officer.Department.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: resolved, Note: "Main valve repaired"}); err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, Dial(t, sys, Supervisor()), []string{resolved}, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)

	for _, role := range []struct {
		who   authx.Principal
		pages []string
	}{
		{GridWorker(superGrid), []string{"grid", "grid/issues/" + resolved, "issues/" + id}},
		{Officer(superUnit), []string{"inbox", "issues/" + id}},
		{authx.Principal{Subject: "dispatcher@city", Role: authx.RoleDispatcher, Scope: authx.CityScope}, []string{"desk", "map", "issues/" + id}},
		{Supervisor(), []string{"breaches", "extensions", "scorecards", "map", "issues/" + id + "/supervise"}},
	} {
		for _, lang := range []string{"zh", "en"} {
			b := browser.New(t, browser.WithWindow(640, 900), browser.WithLanguage(lang))
			browser.Run(t, b, "sign in as "+string(role.who.Role), chromedp.Navigate(signInLink(t, sys, role.who)))
			browser.WaitText(t, b, "header", role.who.Subject)
			for _, page := range role.pages {
				browser.Run(t, b, "open "+page, chromedp.Navigate(superPage(sys, page)))
				browser.WaitText(t, b, "main", "")
				problems, err := chromedp.Run(b, chromedp.Evaluate[[]string](accessAudit))
				if err != nil {
					t.Fatalf("audit /console/%s: %v", page, err)
				}
				browser.Run(t, b, "press Tab on "+page, chromedp.KeyEvent("\t"))
				first, err := chromedp.Run(b, chromedp.Evaluate[string](`document.activeElement.getAttribute('href') || document.activeElement.outerHTML`))
				if err != nil {
					t.Fatalf("focus on /console/%s: %v", page, err)
				}
				for _, p := range problems {
					t.Errorf("%s, %s, /console/%s: %s", role.who.Role, lang, page, p)
				}
				if first != "#main" {
					t.Errorf("%s, %s, /console/%s: the first Tab reached %s, not the link to skip to the content",
						role.who.Role, lang, page, strings.TrimSpace(first))
				}
			}
		}
	}
}
