package cli_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

func TestARouteIsExplainedReturnedAndDispatchedAtTheDeskFromTheCommandLine(t *testing.T) {
	e := start(t)
	worker := e.token(authx.RoleGridWorker, grid)
	dispatcher := e.token(authx.RoleDispatcher, authx.CityScope)
	water := e.token(authx.RoleOfficer, "water")

	// A raise by a point finds its grid; the route explained names every rule tried.
	m := caseLine.FindStringSubmatch(e.ok(worker, "raise", "--lat", "22.7360", "--lng", "110.3050", "--category", "blocked-drain", "--text", "Drain overflowing", "--address", "Taoyuan Road 3"))
	if m == nil {
		t.Fatal("raise printed no case number")
	}
	id := m[1]
	var explained whistlev1.ExplainRouteResponse
	wait.For(t, time.Minute, 50*time.Millisecond, func() error {
		_, _, err := e.whistle(dispatcher, "route", "explain", "--issue", id)
		return err
	})
	e.okJSON(dispatcher, &explained, "route", "explain", "--issue", id)
	if explained.GetGridId() != grid || explained.GetRuleId() != "blocked-drain" || len(explained.GetTrials()) < 2 {
		t.Errorf("route explain --issue: %v", &explained)
	}
	if out := e.ok(dispatcher, "route", "explain", "--issue", id); !strings.Contains(out, "RULE") || !strings.Contains(out, "gas-leak") || !strings.Contains(out, "urban-management-xinhua") {
		t.Errorf("route explain shows no table of the rules tried and the units:\n%s", out)
	}
	if out := e.ok(dispatcher, "rules", "list"); !strings.Contains(out, "Rules version") || !strings.Contains(out, "night-noise") {
		t.Errorf("rules list:\n%s", out)
	}
	if out := e.ok(dispatcher, "rules", "reload"); !strings.Contains(out, "Rules unchanged") {
		t.Errorf("rules reload with nothing changed:\n%s", out)
	}

	// The lead returns it: it waits at the desk, and a dispatcher sends it on.
	wait.For(t, time.Minute, 50*time.Millisecond, func() error {
		_, _, err := e.whistle(water, "return", id, "--reason", "the pipe is private")
		return err
	})
	var desk whistlev1.ListDeskResponse
	wait.For(t, time.Minute, 50*time.Millisecond, func() error {
		e.okJSON(dispatcher, &desk, "desk", "list")
		if len(desk.GetItems()) != 1 {
			return errNotYet
		}
		return nil
	})
	if out := e.ok(dispatcher, "desk", "list"); !strings.Contains(out, id) || !strings.Contains(out, "WAITING") {
		t.Errorf("desk list:\n%s", out)
	}
	if out := e.ok(dispatcher, "desk", "dispatch", id, "--lead", "housing", "--note", "a private pipe"); !strings.Contains(out, "dispatched to housing (lead)") {
		t.Errorf("desk dispatch:\n%s", out)
	}
	if _, errOut, err := e.whistle(dispatcher, "desk", "dispatch", id, "--lead", "housing"); err == nil || !strings.Contains(errOut, "FailedPrecondition") {
		t.Errorf("dispatching it again: %v %s", err, errOut)
	}
}

// errNotYet says a condition polled for does not hold yet.
var errNotYet = errors.New("not yet")
