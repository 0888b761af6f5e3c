package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

func TestASupervisorUrgesAndDecidesExtensionsFromTheCommandLine(t *testing.T) {
	e := start(t)
	worker := e.token(authx.RoleGridWorker, grid)
	supervisor := e.token(authx.RoleSupervisor, "xinhua")
	m := caseLine.FindStringSubmatch(e.ok(worker, "raise", "--grid", grid, "--category", "blocked-drain", "--text", "Drain overflowing", "--request-id", "cli-supervised"))
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
	var lead *whistlev1.Assignment
	for _, a := range shown.GetIssue().GetAssignments() {
		if a.GetRole() == whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD {
			lead = a
		}
	}
	unit := lead.GetUnitId()
	officer := e.token(authx.RoleOfficer, unit)
	fails := func(tok, code, names string, args ...string) {
		t.Helper()
		if _, errOut, err := e.whistle(tok, args...); err == nil || !strings.Contains(errOut, code) || !strings.Contains(errOut, names) {
			t.Errorf("whistle %s: %v\n%s\nwant %s naming %q", strings.Join(args, " "), err, errOut, code, names)
		}
	}

	// Urges: the lead's part by default; a retry with the same key urges once.
	if out := e.ok(supervisor, "urge", id, "--note", "the school opens on Monday", "--request-id", "urge-1"); !strings.Contains(out, unit+" urged (1 in all)") {
		t.Errorf("urge:\n%s", out)
	}
	if out := e.ok(supervisor, "urge", id, "--note", "the school opens on Monday", "--request-id", "urge-1"); !strings.Contains(out, "(1 in all)") {
		t.Errorf("urge retried:\n%s", out)
	}
	if out := e.ok(supervisor, "urge", id, "--unit", unit, "--note", "still waiting"); !strings.Contains(out, "(2 in all)") {
		t.Errorf("a second urge:\n%s", out)
	}
	fails(supervisor, "InvalidArgument", "--note", "urge", id)
	fails(officer, "PermissionDenied", "supervisor", "urge", id, "--note", "hurry")

	// The unit asks for more time; the supervisor approves what it proposed.
	fails(supervisor, "FailedPrecondition", "no extension request pending", "extension", "decide", id, "--unit", unit, "--approve")
	want := lead.GetResolveBy().AsTime().Add(48 * time.Hour).Truncate(time.Second) // --to is read to the second
	e.ok(officer, "extend", id, "--unit", unit, "--to", want.Format(time.RFC3339), "--reason", "a pump is on order")
	// The request waits on the supervisor's list, which an officer may not read.
	wait.For(t, time.Minute, 50*time.Millisecond, func() error {
		if out, _, err := e.whistle(supervisor, "extensions"); err != nil || !strings.Contains(out, id) {
			return errNotYet
		}
		return nil
	})
	if out := e.ok(supervisor, "extensions"); !strings.Contains(out, "CASE") || !strings.Contains(out, unit) || !strings.Contains(out, "resolve") ||
		!strings.Contains(out, want.Local().Format("2006-01-02 15:04:05")) || !strings.Contains(out, "a pump is on order") {
		t.Errorf("extensions:\n%s", out)
	}
	var waiting whistlev1.ListExtensionRequestsResponse
	e.okJSON(supervisor, &waiting, "extensions", "--dept", lead.GetDepartmentId(), "--area", grid)
	if r := waiting.GetRequests(); len(r) != 1 || r[0].GetIssueId() != id || r[0].GetUnitId() != unit || !r[0].GetProposed().AsTime().Equal(want) {
		t.Errorf("extensions --json: %v", r)
	}
	fails(officer, "PermissionDenied", "supervisor", "extensions")
	fails(supervisor, "InvalidArgument", "area_id", "extensions", "--area", "atlantis")
	fails(supervisor, "InvalidArgument", "--reason", "extension", "decide", id, "--unit", unit, "--deny")
	fails(supervisor, "InvalidArgument", "--approve and --deny", "extension", "decide", id, "--unit", unit)
	fails(supervisor, "InvalidArgument", "--unit", "extension", "decide", id, "--approve")
	fails(officer, "PermissionDenied", "supervisor", "extension", "decide", id, "--unit", unit, "--approve")
	moved := "resolve deadline moved to " + want.Local().Format("2006-01-02 15:04:05")
	if out := e.ok(supervisor, "extension", "decide", id, "--unit", unit, "--approve", "--request-id", "approve-1"); !strings.Contains(out, moved) {
		t.Errorf("extension decide --approve:\n%s", out)
	}
	// The unit asks again; the approval retried with its key does not approve the new request, and
	// the supervisor denies it.
	e.ok(officer, "extend", id, "--unit", unit, "--to", want.Add(24*time.Hour).Format(time.RFC3339), "--reason", "and another part")
	if out := e.ok(supervisor, "extension", "decide", id, "--unit", unit, "--approve", "--request-id", "approve-1"); !strings.Contains(out, moved) {
		t.Errorf("extension decide --approve retried with its key:\n%s", out)
	}
	if out := e.ok(supervisor, "extension", "decide", id, "--unit", unit, "--deny", "--reason", "the part is in stock"); !strings.Contains(out, "not granted (the part is in stock)") {
		t.Errorf("extension decide --deny:\n%s", out)
	}
	if out := e.ok(supervisor, "extensions"); out != "No extension request waits for a decision.\n" {
		t.Errorf("extensions once every request is decided:\n%s", out)
	}

	// The issue's page and its timeline say so.
	wait.For(t, time.Minute, 50*time.Millisecond, func() error {
		e.okJSON(supervisor, &shown, "show", id)
		for _, a := range shown.GetIssue().GetAssignments() {
			if a.GetUnitId() == unit && a.GetUrges() == 2 && a.GetExtensionDecided() != nil && !a.GetExtensionDecided().GetApproved() &&
				a.GetResolveBy().AsTime().Equal(want) {
				return nil
			}
		}
		return errNotYet
	})
	out := e.ok(supervisor, "show", id)
	for _, says := range []string{unit + " urged 2 times", unit + "'s resolve extension denied by test-supervisor: the part is in stock"} {
		if !strings.Contains(out, says) {
			t.Errorf("show does not say %q:\n%s", says, out)
		}
	}

	// Breaches by level and period: none is late here.
	for _, args := range [][]string{{"breaches", "--level", "1"}, {"breaches", "--from", "-1h", "--until", "1h"}} {
		if out := e.ok(supervisor, args...); out != "No breaches.\n" {
			t.Errorf("whistle %s:\n%s", strings.Join(args, " "), out)
		}
	}
	fails(supervisor, "InvalidArgument", "--from", "breaches", "--from", "yesterday")
	fails(supervisor, "InvalidArgument", "until", "breaches", "--from", "1h", "--until", "-1h")
	fails(supervisor, "InvalidArgument", "--watch", "breaches", "--watch", "--level", "2")
}
