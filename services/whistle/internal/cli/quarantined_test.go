package cli_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/cli"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/systemtest"
)

// startInFolder is start on a data folder the test knows, so that it can read the NATS users
// the system wrote there.
func startInFolder(t *testing.T, dir string) *env {
	t.Helper()
	t.Setenv(cli.TokenEnv, "") // only what a test passes counts
	sys, err := system.Start(t.Context(), system.Options{
		DataDir:  dir,
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("start the system: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sys.Stop(ctx); err != nil {
			t.Errorf("stop the system: %v", err)
		}
	})
	return &env{t: t, sys: sys}
}

// settled waits until every service's consumer has handled every event in the stream.
func (e *env) settled() {
	e.t.Helper()
	wait.For(e.t, 10*time.Second, 20*time.Millisecond, func() error {
		for _, svc := range e.sys.Services() {
			n, err := e.sys.Deps().Log.Pending(e.t.Context(), svc.Name())
			if err == nil && n > 0 {
				err = fmt.Errorf("%s: %d events pending", svc.Name(), n)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func TestAnEventNoServiceCanApplyShowsInQuarantinedInShowAndInTheInbox(t *testing.T) {
	dir := t.TempDir()
	e := startInFolder(t, dir)
	worker := e.token(authx.RoleGridWorker, grid)
	supervisor := e.token(authx.RoleSupervisor, authx.CityScope)

	if out := e.ok(supervisor, "quarantined"); out != "No quarantined events.\n" {
		t.Errorf("quarantined on a new system prints %q", out)
	}
	route := &whistlev1.ExplainRouteResponse{}
	e.okJSON(supervisor, route, "route", "explain", "--grid", grid, "--category", "noise")
	if len(route.GetAssignments()) == 0 {
		t.Fatalf("noise in %s is routed to no department: %v", grid, route)
	}
	dept := route.GetAssignments()[0].GetUnitId()
	officer := e.token(authx.RoleOfficer, dept)
	m := caseLine.FindStringSubmatch(e.ok(worker, "raise", "--grid", grid, "--category", "noise", "--text", "Drilling at night"))
	if m == nil {
		t.Fatal("raise printed no case number")
	}
	id := m[1]
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		inbox := &whistlev1.ListInboxResponse{}
		e.okJSON(officer, inbox, "inbox")
		if len(inbox.GetItems()) != 1 {
			return fmt.Errorf("%s's inbox holds %v, want %s", dept, inbox.GetItems(), id)
		}
		return nil
	})
	e.settled()

	subject := eventlog.Subject(id, "acknowledged")
	seq := systemtest.PublishAs(t, dir, e.sys, "department", subject, []byte("\xffnot an event"))
	e.settled()

	all := &whistlev1.ListQuarantinedResponse{}
	e.okJSON(supervisor, all, "quarantined")
	services := map[string]bool{}
	for _, ev := range all.GetEvents() {
		if ev.GetIssueId() != id || ev.GetSubject() != subject || ev.GetSeq() != seq || ev.GetDeliveries() != 1 || ev.GetReason() == "" {
			t.Errorf("quarantined --json shows %v, want %s at %d on %s, delivered once, with a reason", ev, id, seq, subject)
		}
		services[ev.GetService()] = true
		if ev.GetGridId() != grid {
			t.Errorf("the event %s quarantined in %s names grid %q, want %s", subject, ev.GetService(), ev.GetGridId(), grid)
		}
	}
	for _, svc := range []string{"intake", "routing", "department", "escalation"} {
		if !services[svc] {
			t.Errorf("quarantined --json does not show the event as quarantined in %s: %v", svc, all.GetEvents())
		}
	}

	out := e.ok(supervisor, "quarantined", "--page-size", "1")
	if !strings.HasPrefix(out, "SERVICE ") || !strings.Contains(out, "DELIVERIES") {
		t.Errorf("quarantined prints no header of its columns:\n%s", out)
	}
	rowLine := regexp.MustCompile(`(?m)^escalation +` + id + ` +` + fmt.Sprint(seq) + ` +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +1 +undecodable`)
	if !rowLine.MatchString(out) {
		t.Errorf("quarantined does not show escalation's row of %s at %d, delivered once, undecodable:\n%s", id, seq, out)
	}
	if n := strings.Count(out, " "+id+" "); n != 4 {
		t.Errorf("quarantined with pages of one shows %s %d times, want once per service:\n%s", id, n, out)
	}

	if out := e.ok(e.token(authx.RoleSupervisor, "hexi"), "quarantined"); out != "No quarantined events.\n" {
		t.Errorf("a supervisor of another street sees %q", out)
	}
	if _, errOut, err := e.whistle(officer, "quarantined"); err == nil || !strings.HasPrefix(errOut, "whistle: PermissionDenied: ") {
		t.Errorf("an officer listing quarantined events gets %q", errOut)
	}
	if _, errOut, err := e.whistle(supervisor, "quarantined", "--page-size", "0"); err == nil || !strings.HasPrefix(errOut, "whistle: InvalidArgument: --page-size") {
		t.Errorf("a page size of 0 gets %q", errOut)
	}

	got := &whistlev1.GetIssueResponse{}
	e.okJSON(worker, got, "show", id)
	if q := got.GetIssue().GetQuarantine(); q.GetSeq() != seq || q.GetSubject() != subject || q.GetReason() == "" || q.GetStoredAt() == nil {
		t.Errorf("show --json shows the quarantine as %v, want event %d on %s with its reason and time", q, seq, subject)
	}
	want := fmt.Sprintf("Quarantined: event %d (%s) could not apply: undecodable", seq, subject)
	if out := e.ok(worker, "show", id); !strings.Contains(out, want) || !strings.Contains(out, "; 0 later events held\n") {
		t.Errorf("show does not say %q ... 0 later events held:\n%s", want, out)
	}

	item := &whistlev1.ListInboxResponse{}
	e.okJSON(officer, item, "inbox")
	if q := item.GetItems()[0].GetQuarantine(); q.GetSeq() != seq || q.GetSubject() != subject {
		t.Errorf("inbox --json shows the quarantine as %v, want event %d on %s", q, seq, subject)
	}
	inbox := e.ok(officer, "inbox")
	if !regexp.MustCompile(`(?m)^`+id+` +QUARANTINED `).MatchString(inbox) || !strings.Contains(inbox, "Case "+id+": "+want) {
		t.Errorf("the inbox does not mark %s QUARANTINED and say why:\n%s", id, inbox)
	}
}
