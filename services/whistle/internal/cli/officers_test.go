package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

func TestAnOfficersDayAndTheClosingLoopFromTheCommandLine(t *testing.T) {
	e := start(t)
	worker := e.token(authx.RoleGridWorker, grid)
	supervisor := e.token(authx.RoleSupervisor, authx.CityScope)
	m := caseLine.FindStringSubmatch(e.ok(worker, "raise", "--grid", grid, "--category", "blocked-drain", "--text", "Drain overflowing", "--request-id", "cli-day"))
	if m == nil {
		t.Fatal("raise printed no case number")
	}
	id := m[1]
	var shown whistlev1.GetIssueResponse
	wait.For(t, time.Minute, 50*time.Millisecond, func() error {
		e.okJSON(supervisor, &shown, "show", id)
		if shown.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED {
			return errNotYet
		}
		return nil
	})
	if out := e.ok(supervisor, "roster", "who", "--unit", "water"); !strings.Contains(out, "water:") || !strings.Contains(out, "head") {
		t.Errorf("roster who:\n%s", out)
	}
	if out := e.ok(supervisor, "roster", "duty", "--unit", "water", "--to", "24h"); strings.Count(out, "water") < 2 {
		t.Errorf("roster duty:\n%s", out)
	}

	for _, a := range shown.GetIssue().GetAssignments() {
		officer := e.token(authx.RoleOfficer, a.GetUnitId()) // the sample rosters' first officer of the unit
		if a.GetUnitId() == "water" {
			if out := e.ok(officer, "note", id, "valve found", "--request-id", "note-1"); !strings.Contains(out, "note recorded") {
				t.Errorf("note:\n%s", out)
			}
			if out := e.ok(officer, "extend", id, "--to", "48h", "--reason", "a part is on order"); !strings.Contains(out, "a supervisor decides") {
				t.Errorf("extend:\n%s", out)
			}
			if _, errOut, err := e.whistle(officer, "handover", id, "--to", "gas.1"); err == nil || !strings.Contains(errOut, "InvalidArgument") {
				t.Errorf("a hand-over to another unit's officer: %v %s", err, errOut)
			}
			if out := e.ok(officer, "handover", id, "--to", "water.2", "--note", "off at noon"); !strings.Contains(out, "now water.2's") {
				t.Errorf("handover:\n%s", out)
			}
		}
		e.ok(officer, "ack", id, "--unit", a.GetUnitId())
		e.ok(officer, "resolve", id, "--unit", a.GetUnitId(), "--note", "done")
	}
	wait.For(t, time.Minute, 50*time.Millisecond, func() error {
		e.okJSON(supervisor, &shown, "show", id)
		if shown.GetIssue().GetStatus() != whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED {
			return errNotYet
		}
		return nil
	})
	if _, errOut, err := e.whistle(worker, "verify", id, "--fail"); err == nil || !strings.Contains(errOut, "--reason") {
		t.Errorf("a failure without a reason: %v %s", err, errOut)
	}
	if out := e.ok(worker, "verify", id, "--pass"); !strings.Contains(out, "closed") {
		t.Errorf("verify --pass:\n%s", out)
	}
	if out := e.ok(worker, "rate", id, "--score", "5", "--comment", "fast"); !strings.Contains(out, "rated 5 of 5") {
		t.Errorf("rate:\n%s", out)
	}
	if _, errOut, err := e.whistle(worker, "rate", id, "--score", "2", "--reopen"); err == nil || !strings.Contains(errOut, "FailedPrecondition") {
		t.Errorf("a second rating: %v %s", err, errOut)
	}
}
