package console

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// svKey finds the catalog keys the supervisor's Go code names.
var svKey = regexp.MustCompile(`"(supervisor\.[a-z0-9_]+\.[a-z0-9_.]+|supervisor\.[a-z_]+)"`)

// svShownKey finds a key of the supervisor's catalog shown as itself, which T does for a key the
// catalog lacks.
var svShownKey = regexp.MustCompile(`supervisor\.[a-z_]+\.[a-z_]+`)

func TestEveryKeyTheSupervisorsCodeNamesIsInTheCatalog(t *testing.T) {
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("supervisor*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no supervisor files: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range svKey.FindAllSubmatch(b, -1) {
			if _, ok := cats[Languages[0]][string(m[1])]; !ok {
				t.Errorf("%s names %q, which no catalog has", f, m[1])
			}
		}
	}
	// The keys the code makes from the API's enums.
	for _, r := range whistlev1.AssignmentRole_name {
		key := "supervisor.role." + strings.ToLower(strings.TrimPrefix(r, "ASSIGNMENT_ROLE_"))
		if _, ok := cats[Languages[0]][key]; !ok {
			t.Errorf("no catalog has %q", key)
		}
	}
}

// svConsole is a console with its pages and catalogs and a fixed clock, without services: enough
// to render pages.
func svConsole(t *testing.T, now time.Time) *Console {
	t.Helper()
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	zone, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return &Console{cfg: Config{Zone: zone, Now: func() time.Time { return now }, Logger: slog.Default()}, catalogs: cats, pages: pages}
}

func TestTheSupervisorsPagesRenderEveryStringInBothLanguages(t *testing.T) {
	now := time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)
	c := svConsole(t, now)
	for _, code := range Languages {
		l := lang{code, c.catalogs[code]}
		q := &request{lang: l, session: session{Principal: authx.Principal{Subject: "s", Role: authx.RoleSupervisor, Scope: "city"}, CSRF: "TOKEN"}}
		d := svDirectory{names: map[string]string{"water": "Water", "xinhua": "Xinhua"}, categories: map[string]string{"water-supply": "Water supply"}}
		deadline := now.Add(-time.Hour)
		breach := &whistlev1.Breach{IssueId: "K7M3-QX9A", DepartmentId: "water", UnitId: "water", Kind: whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN,
			Deadline: timestamppb.New(deadline), BreachedAt: timestamppb.New(deadline.Add(time.Second)), StreetId: "xinhua", GridId: "xinhua-taoyuan-01",
			CategoryId: "water-supply", Seq: 42, Level: 2, Round: 1}
		part := &whistlev1.Assignment{DepartmentId: "water", UnitId: "water", Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD, Reopened: 1,
			Status: whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED, ReportInBy: timestamppb.New(deadline), ResolveBy: timestamppb.New(now.Add(time.Hour)),
			Urges: 2, EscalationLevel: 2, Breached: []whistlev1.DeadlineKind{whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN},
			ExtensionRequested: &whistlev1.ExtensionRequest{Kind: whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, Proposed: timestamppb.New(now.Add(48 * time.Hour)),
				Reason: "a part is on order", RequestedBy: "zhou", RequestedAt: timestamppb.New(now)},
			ExtensionDecided: &whistlev1.ExtensionDecision{Kind: whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, Approved: false, Reason: "no", DecidedBy: "s", DecidedAt: timestamppb.New(now)}}
		issue := &whistlev1.Issue{Id: "K7M3-QX9A", Assignments: []*whistlev1.Assignment{part}}
		row := c.breachRow(q, d, breach, issue, now)
		if !row.Open || row.Urges != 2 || !row.ExtensionPending || !row.Supervise {
			t.Errorf("%s: the breach's row: %+v", code, row)
		}
		board := boardPage{Nav: q.svNav("breaches"), Scope: "Lianhua", List: boardList{Rows: []breachRow{row}}, Live: true, Events: "/console/breaches/events?v=1",
			Areas: []svOptionGroup{{Label: "Xinhua", Options: []svOption{{Value: "xinhua", Label: "Xinhua", Selected: true}}}}}
		sc := &whistlev1.Scorecard{Id: "water", Name: "Water", Dispatched: 3, SmallSample: true,
			ResolutionRate: &whistlev1.ScorecardRate{Numerator: 1, Denominator: 3, Value: 1.0 / 3}, OnTimeResolutionRate: &whistlev1.ScorecardRate{},
			MedianTimeToAcknowledge: nil, BreachesByLevel: []*whistlev1.BreachLevelCount{{Level: 0, Count: 1}, {Level: 2, Count: 1}}, Breaches: 2}
		card := c.svCard(l, d, sc)
		scores := svScorecardPage{Nav: q.svNav("scorecards"), Kind: "street", Street: true, Shown: true, MinSample: 5, Area: "Xinhua", Cards: []svCardView{card},
			Chart: svChart{Labels: []string{"Water"}, Series: []svChartSeries{{Label: "x", Values: []*float64{svPercent(sc.GetResolutionRate())}}}}}
		for name, data := range map[string]any{
			"supervisor-breaches.html":   board,
			"supervisor-supervise.html":  svSupervisePage(c, q, d, issue),
			"supervisor-extensions.html": svExtensionsPage{Nav: q.svNav("extensions"), Later: "/console/extensions?page=x", Rows: []svExtensionRow{{IssueID: "K7M3-QX9A", Anchor: "part-water"}}},
			"supervisor-scorecards.html": scores,
		} {
			w := httptest.NewRecorder()
			c.render(w, http.StatusOK, name, page{L: l, Session: &q.session, Path: "/console/x", Data: data})
			body := w.Body.String()
			if w.Code != http.StatusOK {
				t.Fatalf("%s in %s: %d %s", name, code, w.Code, body)
			}
			if k := svShownKey.FindString(body); k != "" {
				t.Errorf("%s in %s shows the key %q", name, code, k)
			}
			if name == "supervisor-supervise.html" && !strings.Contains(body, "&lt;b&gt;again&lt;/b&gt;</textarea>") {
				t.Errorf("%s in %s does not give back the refused note as text: %s", name, code, body)
			}
			if name == "supervisor-scorecards.html" {
				_, rest, _ := strings.Cut(body, `id="scorecard-chart-data">`)
				block, _, _ := strings.Cut(rest, "</script>")
				var got svChart
				if err := json.Unmarshal([]byte(block), &got); err != nil || len(got.Labels) != 1 || *got.Series[0].Values[0] != 33.3 {
					t.Errorf("the chart's data block %q reads as %+v (%v)", block, got, err)
				}
			}
		}
	}
}

// svSupervisePage is the supervise page's data for an issue, as svSupervise makes it.
func svSupervisePage(c *Console, q *request, d svDirectory, is *whistlev1.Issue) supervisePage {
	p := supervisePage{Nav: q.svNav(""), Issue: c.issueRow(q.lang, d.categories, is), Done: q.lang.T("supervisor.done.urged"), CSRF: q.session.CSRF}
	for _, a := range is.GetAssignments() {
		p.Parts = append(p.Parts, c.svPart(q, d, a, url.Values{"unit": {"water"}, "note": {"<b>again</b>"}}))
	}
	return p
}

func TestTheBoardsFormIsReadAndAWrongFieldIsNamedInThePersonsLanguage(t *testing.T) {
	c := svConsole(t, time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC))
	l := lang{"en", c.catalogs["en"]}
	f, msg := c.boardFilter(l, url.Values{"area": {"xinhua"}, "department": {"water"}, "level": {"2"}, "from": {"2025-03-01"}, "to": {"2025-03-02"}})
	if msg != "" {
		t.Fatalf("a good form: %s", msg)
	}
	shanghai := time.FixedZone("CST", 8*3600)
	if f.req.GetAreaId() != "xinhua" || f.req.GetDepartmentId() != "water" || f.req.GetMinLevel() != 2 ||
		!f.req.GetFrom().AsTime().Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, shanghai)) || !f.req.GetUntil().AsTime().Equal(time.Date(2025, 3, 3, 0, 0, 0, 0, shanghai)) {
		t.Errorf("the request: %v", f.req)
	}
	if q := f.query("v", "x"); q != "area=xinhua&department=water&from=2025-03-01&level=2&to=2025-03-02&v=x" {
		t.Errorf("the query: %s", q)
	}
	for _, c2 := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"level": {"17"}}, "Lowest escalation level"},
		{url.Values{"level": {"two"}}, "Lowest escalation level"},
		{url.Values{"from": {"3/1/2025"}}, "“From”"},
		{url.Values{"to": {"2025-02-30"}}, "“To (inclusive)”"},
		{url.Values{"from": {"2025-03-02"}, "to": {"2025-03-01"}}, "end date cannot come before"},
		{url.Values{"area": {"<script>"}}, "Street or community"},
	} {
		if _, msg := c.boardFilter(l, c2.form); !strings.Contains(msg, c2.want) {
			t.Errorf("%v: %q, want it to say %q", c2.form, msg, c2.want)
		}
	}
}

func TestAFormsTextIsRequiredAndBoundedInCharactersNotBytes(t *testing.T) {
	l := lang{"zh", svConsole(t, time.Now()).catalogs["zh"]}
	if v, msg := svText(l, strings.Repeat("督", 500), "supervisor.field.note", svMaxNote, true); msg != "" || v == "" {
		t.Errorf("500 characters of Chinese are allowed: %s", msg)
	}
	if _, msg := svText(l, strings.Repeat("督", 501), "supervisor.field.note", svMaxNote, true); !strings.Contains(msg, "督办内容") || !strings.Contains(msg, "501") {
		t.Errorf("501 characters: %q", msg)
	}
	if _, msg := svText(l, "  ", "supervisor.field.note", svMaxNote, true); !strings.Contains(msg, "请填写“督办内容”") {
		t.Errorf("a blank note: %q", msg)
	}
	if _, msg := svText(l, "", "supervisor.field.reason", svMaxReason, false); msg != "" {
		t.Errorf("an optional reason left empty: %q", msg)
	}
	if !svCheckRequestID(svRequestID()) || svCheckRequestID("") || svCheckRequestID("a b") || svCheckRequestID(strings.Repeat("a", 65)) {
		t.Error("the forms' idempotency keys are checked wrongly")
	}
}

func TestABreachedClockIsClearedEndedOrStillRunningAsTheIssuesPartSays(t *testing.T) {
	deadline := time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)
	at := timestamppb.New(deadline.Add(10 * time.Minute))
	reportIn := &whistlev1.Breach{Kind: whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN, Deadline: timestamppb.New(deadline)}
	resolve := &whistlev1.Breach{Kind: whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, Deadline: timestamppb.New(deadline)}
	open := whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED
	for _, c := range []struct {
		name   string
		b      *whistlev1.Breach
		a      *whistlev1.Assignment
		want   svClockState
		wantAt time.Time
	}{
		{"no part", reportIn, nil, svClockUnknown, time.Time{}},
		{"reported in late", reportIn, &whistlev1.Assignment{Status: open, AcknowledgedAt: at}, svClockCleared, at.AsTime()},
		{"reported in, not resolved", resolve, &whistlev1.Assignment{Status: open, AcknowledgedAt: at}, svClockRunning, time.Time{}},
		{"returned", resolve, &whistlev1.Assignment{Status: whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RETURNED, EndedAt: at}, svClockEnded, at.AsTime()},
		{"a round left behind", resolve, &whistlev1.Assignment{Status: open, Reopened: 1}, svClockCleared, time.Time{}},
		{"cleared before the breach was recorded", &whistlev1.Breach{Kind: whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, ClearedAt: at}, &whistlev1.Assignment{Status: open}, svClockCleared, at.AsTime()},
	} {
		got, gotAt := svClockNow(c.b, c.a)
		if got != c.want || !gotAt.Equal(c.wantAt) {
			t.Errorf("%s: %v at %v, want %v at %v", c.name, got, gotAt, c.want, c.wantAt)
		}
	}
}

func TestEveryPageOfTheConsoleHasARouteOfItsOwn(t *testing.T) {
	c := svConsole(t, time.Now())
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("two pages claim one route: %v", r)
		}
	}()
	c.routes()
	w := httptest.NewRecorder()
	c.mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/console/static/supervisor.js", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "scorecard-chart-data") {
		t.Errorf("the supervisor's script: %d", w.Code)
	}
}
