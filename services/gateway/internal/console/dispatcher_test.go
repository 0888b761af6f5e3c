package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/authx"
)

func TestTheIssuePageShowsTheLinksAndALabelledUnlinkFormInBothLanguages(t *testing.T) {
	c := svConsole(t, time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC))
	keys := []string{"issue.linked_title", "issue.linked_to", "issue.duplicates_title", "unlink.action", "unlink.reason", "unlink.hint",
		"unlink.done", "unlink.reason_required", "unlink.not_linked"}
	for _, code := range Languages {
		l := lang{code, c.catalogs[code]}
		for _, k := range keys {
			if l.T(k, maxText) == k {
				t.Errorf("%s has no %q", code, k)
			}
		}
		ss := session{Principal: authx.Principal{Subject: "d", Role: authx.RoleDispatcher, Scope: "city"}, CSRF: "TOKEN"}
		form := func(id string) *unlinkForm { return &unlinkForm{L: l, Issue: id, CSRF: "TOKEN"} }
		refused := form("XSY2-WWQC")
		refused.Reason, refused.Refused = "  ", true
		for name, tc := range map[string]struct {
			view issueView
			want []string
		}{
			"a refused duplicate": {issueView{issueRow: issueRow{ID: "XSY2-WWQC"}, LinkedTo: "C6MZ-Y383", Unlink: refused}, []string{
				`<a href="/console/issues/C6MZ-Y383">C6MZ-Y383</a>`, `action="/console/issues/XSY2-WWQC/unlink"`,
				`<label for="unlink-reason-XSY2-WWQC">`, `id="unlink-reason-XSY2-WWQC" name="reason" required`,
				`aria-invalid="true" autofocus`, `<details open>`, `name="csrf" value="TOKEN"`}},
			"a case, after an unlink": {issueView{issueRow: issueRow{ID: "C6MZ-Y383"}, Unlinked: true,
				Duplicates: []duplicateView{{ID: "XSY2-WWQC", Unlink: form("XSY2-WWQC")}, {ID: "K7M3-QX9A"}}}, []string{
				`id="done"`, `<a href="/console/issues/XSY2-WWQC">`, `<a href="/console/issues/K7M3-QX9A">`,
				`<label for="unlink-reason-XSY2-WWQC">`}},
		} {
			w := httptest.NewRecorder()
			c.render(w, http.StatusOK, "issue.html", page{L: l, Session: &ss, Path: "/console/issues/x", Data: tc.view})
			body := w.Body.String()
			if w.Code != http.StatusOK {
				t.Fatalf("%s in %s: %d %s", name, code, w.Code, body)
			}
			for _, want := range tc.want {
				if !strings.Contains(body, want) {
					t.Errorf("%s in %s lacks %s:\n%s", name, code, want, body)
				}
			}
			if n := strings.Count(body, `action="/console/issues/`); n != 1 {
				t.Errorf("%s in %s has %d unlink forms, want 1", name, code, n)
			}
			for _, k := range keys {
				if strings.Contains(body, k) {
					t.Errorf("%s in %s shows the key %q", name, code, k)
				}
			}
		}
	}
}
