package cli_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

func TestScorecardPrintsTheRatesTimesAndBreachesOfAPeriodAndRefusesWhatItCannotRead(t *testing.T) {
	e := start(t)
	worker := e.token(authx.RoleGridWorker, grid)
	supervisor := e.token(authx.RoleSupervisor, authx.CityScope)
	officer := e.token(authx.RoleOfficer, "water")
	from := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	// Three water supply failures, each the water bureau's alone: two reported in, one resolved.
	var ids []string
	for i := range 3 {
		m := caseLine.FindStringSubmatch(e.ok(worker, "raise", "--grid", grid, "--category", "water-supply", "--text", fmt.Sprintf("no water at no. %d", i)))
		if m == nil {
			t.Fatal("raise printed no case number")
		}
		ids = append(ids, m[1])
	}
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		inbox := &whistlev1.ListInboxResponse{}
		e.okJSON(officer, inbox, "inbox")
		if len(inbox.GetItems()) != 3 {
			return fmt.Errorf("water's inbox holds %d items, want 3", len(inbox.GetItems()))
		}
		return nil
	})
	e.ok(officer, "ack", ids[0])
	e.ok(officer, "ack", ids[1])
	e.ok(officer, "resolve", ids[0], "--note", "valve replaced")
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		resp := &whistlev1.GetScorecardsResponse{}
		e.okJSON(supervisor, resp, "scorecard", "--department", "water", "--from", from, "--until", until)
		if s := resp.GetScorecards(); len(s) != 1 || s[0].GetDispatched() != 3 || s[0].GetReportedIn() != 2 || s[0].GetResolved() != 1 {
			return fmt.Errorf("water's scorecard: %v", s)
		}
		return nil
	})

	out := e.ok(supervisor, "scorecard", "--department", "--from", from, "--until", until)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Scorecards of departments, \d{4}-\d\d-\d\d \d\d:\d\d to \d{4}-\d\d-\d\d \d\d:\d\d \(Local\)\.$`),
		regexp.MustCompile(`(?m)^RANK +ID +NAME +PARTS +RESPONSE +ON-TIME REPORT-IN +RESOLUTION +ON-TIME RESOLUTION +SATISFACTION +` +
			`ACK P50/P90 +RESOLVE P50/P90 +BREACHES +RETURNS +EXTENSIONS ASKED/APPROVED/DENIED +URGES$`),
		// Three parts: 2 of 3 reported in, both in time; 1 of 3 resolved, in time; none rated.
		regexp.MustCompile(`(?m)^- +water +Water Affairs Bureau +3 +66\.7% \(2/3\) +66\.7% \(2/3\) +33\.3% \(1/3\) +33\.3% \(1/3\) +- +` +
			`\d[\dhms.]*/\d[\dhms.]* +\d[\dhms.]*/\d[\dhms.]* +0 +0 +0/0/0 +0$`),
		regexp.MustCompile(`(?m)^A rank of - is a small sample: fewer than 20 parts dispatched, not ranked\.$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("scorecard --department does not show %s:\n%s", want, out)
		}
	}
	out = e.ok(supervisor, "scorecard", "--street", "xinhua", "--from", from, "--until", until)
	if !regexp.MustCompile(`(?m) +WHISTLES$`).MatchString(out) || !regexp.MustCompile(`(?m)^- +xinhua +Xinhua Street +3 .* 3$`).MatchString(out) {
		t.Errorf("scorecard --street xinhua does not show its 3 parts and 3 whistles:\n%s", out)
	}

	// Dates are whole days in the city's time zone, which the city's area names, --until's
	// included; the default is this month.
	areas := &whistlev1.ListAreasResponse{}
	e.okJSON(supervisor, areas, "areas")
	if a := areas.GetAreas()[0]; a.GetLevel() != "city" || a.GetTimeZone() != "Asia/Shanghai" {
		t.Errorf("the city's area is %v, want it to name its time zone, Asia/Shanghai", a)
	}
	march := &whistlev1.GetScorecardsResponse{}
	e.okJSON(supervisor, march, "scorecard", "--unit", "--from", "2025-03-01", "--until", "2025-03-31")
	if f, u := march.GetFrom().AsTime(), march.GetUntil().AsTime(); !f.Equal(time.Date(2025, 2, 28, 16, 0, 0, 0, time.UTC)) ||
		!u.Equal(time.Date(2025, 3, 31, 16, 0, 0, 0, time.UTC)) || len(march.GetScorecards()) != 0 {
		t.Errorf("March 2025 in Asia/Shanghai reads as %s to %s with %d scorecards", f, u, len(march.GetScorecards()))
	}
	if out := e.ok(supervisor, "scorecard", "--unit", "--from", "2025-03-01", "--until", "2025-03-31"); out !=
		"Scorecards of units, 2025-03-01 00:00 to 2025-04-01 00:00 (Asia/Shanghai).\nNo scorecards: nothing was dispatched in the period.\n" {
		t.Errorf("an empty period prints:\n%s", out)
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().In(shanghai)
	month := &whistlev1.GetScorecardsResponse{}
	e.okJSON(officer, month, "scorecard", "--unit")
	after := time.Now().In(shanghai)
	got := month.GetFrom().AsTime().In(shanghai)
	if (got.Format("2006-01") != before.Format("2006-01") && got.Format("2006-01") != after.Format("2006-01")) || got.Day() != 1 || got.Hour() != 0 ||
		!month.GetUntil().AsTime().Equal(got.AddDate(0, 1, 0)) {
		t.Errorf("the default period is %s to %s, want this month in Asia/Shanghai", got, month.GetUntil().AsTime().In(shanghai))
	}
	if s := month.GetScorecards(); len(s) != 1 || s[0].GetId() != "water" || s[0].GetDispatched() != 3 {
		t.Errorf("the water officer's unit this month: %v", s)
	}

	for _, tc := range []struct {
		tok  string
		args []string
		want string
	}{
		{supervisor, []string{"scorecard"}, "whistle: InvalidArgument: give one of --department, --unit or --street"},
		{supervisor, []string{"scorecard", "--unit", "--street"}, "whistle: InvalidArgument: give one of --department, --unit or --street"},
		{supervisor, []string{"scorecard", "--unit", "--from", "March"}, `whistle: InvalidArgument: --from: want a date like 2025-03-01`},
		{supervisor, []string{"scorecard", "--unit", "--from", "2025-03-02", "--until", "2025-03-01"}, "whistle: InvalidArgument: until: must be after from"},
		{supervisor, []string{"scorecard", "--unit", "--from", "2025-01-01", "--until", "2026-01-02"}, "whistle: InvalidArgument: until: a period is at most 366 days"},
		{supervisor, []string{"scorecard", "--department", "bakery"}, `whistle: InvalidArgument: id: no department "bakery"`},
		{officer, []string{"scorecard", "--street"}, "whistle: PermissionDenied: "},
		{worker, []string{"scorecard", "--unit"}, "whistle: PermissionDenied: "},
	} {
		if _, errOut, err := e.whistle(tc.tok, tc.args...); err == nil || !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("whistle %s: %v %q, want %q", strings.Join(tc.args, " "), err, errOut, tc.want)
		}
	}
}
