package cli_test

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/cli"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// grid is where the tests raise their issues.
const grid = "xinhua-taoyuan-01"

// env is a running system and a way to run whistle commands against it.
type env struct {
	t   *testing.T
	sys *system.System
}

// start brings up a whole Whistle in this process, stopped when the test ends.
func start(t *testing.T) *env {
	t.Helper()
	return startInFolder(t, t.TempDir())
}

// token mints a token for a caller of role over scope.
func (e *env) token(role authx.Role, scope string) string {
	e.t.Helper()
	subject := "test-" + string(role)
	if role == authx.RoleOfficer {
		subject = roster.SampleOfficer(scope) // an officer of the unit by the sample city's rosters
	}
	tok, err := e.sys.Authority().Mint(authx.Principal{Subject: subject, Role: role, Scope: scope}, time.Hour)
	if err != nil {
		e.t.Fatalf("mint: %v", err)
	}
	return tok
}

// whistle runs one command line in process, as the whistle program would with
// `--server <the system>` and the token given, and returns what it printed. Like the
// program, it prints a failure once, as "whistle: " and the error.
func (e *env) whistle(tok string, args ...string) (stdout, stderr string, err error) {
	root := &cobra.Command{Use: "whistle", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(cli.Commands()...)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	all := append([]string{}, args...)
	all = append(all, "--server", e.sys.GRPCAddr())
	if tok != "" {
		all = append(all, "--token", tok)
	}
	root.SetArgs(all)
	if err = root.ExecuteContext(e.t.Context()); err != nil {
		fmt.Fprintln(&errOut, "whistle:", err)
	}
	return out.String(), errOut.String(), err
}

// ok runs a command that must succeed and returns its output.
func (e *env) ok(tok string, args ...string) string {
	e.t.Helper()
	out, errOut, err := e.whistle(tok, args...)
	if err != nil {
		e.t.Fatalf("whistle %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// okJSON runs a command with --json and parses its output into m.
func (e *env) okJSON(tok string, m proto.Message, args ...string) {
	e.t.Helper()
	out := e.ok(tok, append(args, "--json")...)
	if err := protojson.Unmarshal([]byte(out), m); err != nil {
		e.t.Fatalf("whistle %s --json printed what protojson cannot read: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// caseLine finds the case number that raise prints first.
var caseLine = regexp.MustCompile(`(?m)^Case ([0-9A-Z]{4}-[0-9A-Z]{4})$`)

func TestAnIssueRaisedFromTheCommandLineIsWorkedToResolvedByItsDepartments(t *testing.T) {
	e := start(t)
	worker := e.token(authx.RoleGridWorker, grid)
	dispatcher := e.token(authx.RoleDispatcher, authx.CityScope)

	route := &whistlev1.ExplainRouteResponse{}
	e.okJSON(dispatcher, route, "route", "explain", "--grid", grid, "--category", "noise")
	if !route.GetMatched() || len(route.GetAssignments()) == 0 {
		t.Fatalf("route explain: noise in %s should be routed by a rule; got %v", grid, route)
	}
	if out := e.ok(dispatcher, "route", "explain", "--grid", grid, "--category", "noise"); !strings.Contains(out, route.GetAssignments()[0].GetUnitId()) {
		t.Errorf("route explain does not name the lead department %s:\n%s", route.GetAssignments()[0].GetUnitId(), out)
	}

	out := e.ok(worker, "raise", "--grid", grid, "--category", "noise", "--text", "Drilling after midnight at no. 12", "--request-id", "cli-test-1")
	m := caseLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("raise does not print the case number on a line of its own:\n%s", out)
	}
	id := m[1]
	if strings.Contains(out, "replayed") {
		t.Errorf("a first raise says it was replayed:\n%s", out)
	}
	again := &whistlev1.RaiseIssueResponse{}
	e.okJSON(worker, again, "raise", "--grid", grid, "--category", "noise", "--text", "Drilling after midnight at no. 12", "--request-id", "cli-test-1")
	if again.GetIssue().GetId() != id || !again.GetReplayed() {
		t.Errorf("raise retried with the same --request-id = %s replayed %v, want %s replayed", again.GetIssue().GetId(), again.GetReplayed(), id)
	}
	if out := e.ok(worker, "raise", "--grid", grid, "--category", "noise", "--text", "Drilling after midnight at no. 12", "--request-id", "cli-test-1"); !strings.Contains(out, "replayed") {
		t.Errorf("a retried raise does not say it was replayed:\n%s", out)
	}

	for _, a := range route.GetAssignments() {
		dept := a.GetUnitId()
		officer := e.token(authx.RoleOfficer, dept)
		wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
			inbox := &whistlev1.ListInboxResponse{}
			e.okJSON(officer, inbox, "inbox")
			for _, it := range inbox.GetItems() {
				if it.GetIssueId() == id {
					return nil
				}
			}
			return fmt.Errorf("%s is not in %s's inbox: %v", id, dept, inbox)
		})
		if out := e.ok(officer, "inbox"); !strings.Contains(out, id) || !strings.Contains(out, "report in: in ") {
			t.Errorf("%s's inbox table does not show %s with its report-in deadline:\n%s", dept, id, out)
		}
		if out := e.ok(officer, "ack", id); !strings.Contains(out, "acknowledged") {
			t.Errorf("ack %s as %s printed no acknowledged status:\n%s", id, dept, out)
		}
		if out := e.ok(officer, "resolve", id, "--note", "Told the site to stop; checked at 01:00."); !strings.Contains(out, "resolved") {
			t.Errorf("resolve %s as %s printed no resolved status:\n%s", id, dept, out)
		}
		resolved := &whistlev1.ListInboxResponse{}
		e.okJSON(officer, resolved, "inbox", "--status", "resolved")
		if len(resolved.GetItems()) != 1 || resolved.GetItems()[0].GetIssueId() != id {
			t.Errorf("inbox --status resolved for %s = %v, want only %s", dept, resolved.GetItems(), id)
		}
		if out := e.ok(officer, "inbox"); out != "No open assignments in the inbox.\n" {
			t.Errorf("%s's inbox with nothing open prints %q", dept, out)
		}
	}

	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		got := &whistlev1.GetIssueResponse{}
		e.okJSON(worker, got, "show", id)
		if s := got.GetIssue().GetStatus(); s != whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED {
			return fmt.Errorf("show %s: status %s, want resolved", id, s)
		}
		return nil
	})
	show := e.ok(worker, "show", id)
	for _, want := range []string{"Case " + id, "resolved", "acknowledged", "raised", route.GetAssignments()[0].GetUnitId()} {
		if !strings.Contains(show, want) {
			t.Errorf("show %s does not mention %q:\n%s", id, want, show)
		}
	}

	list := &whistlev1.ListIssuesResponse{}
	e.okJSON(worker, list, "list", "--status", "resolved")
	if len(list.GetIssues()) != 1 || list.GetIssues()[0].GetId() != id {
		t.Errorf("list --status resolved = %v, want only %s", list.GetIssues(), id)
	}
	if out := e.ok(worker, "list", "--limit", "5"); !strings.Contains(out, id) {
		t.Errorf("list does not show %s:\n%s", id, out)
	}
}

func TestReferenceDataIsShownAsTablesEmptyListsSaySoAndTheTokenCanComeFromTheEnvironment(t *testing.T) {
	e := start(t)
	t.Setenv(cli.TokenEnv, e.token(authx.RoleSupervisor, authx.CityScope))

	areas := e.ok("", "areas")
	for _, want := range []string{"\ncity ", "\n  xinhua ", "\n    xinhua-taoyuan ", "\n      xinhua-taoyuan-01 "} {
		if !strings.Contains(areas, want) {
			t.Errorf("areas does not show the tree line %q:\n%s", want, areas)
		}
	}
	if out := e.ok("", "departments"); !strings.Contains(out, "Water Affairs Bureau") {
		t.Errorf("departments does not list the water bureau:\n%s", out)
	}
	cats := e.ok("", "categories")
	if !regexp.MustCompile(`(?m)^gas-leak .*30m / 2h`).MatchString(cats) {
		t.Errorf("categories does not show gas-leak's 30m / 2h policy:\n%s", cats)
	}
	for _, want := range []string{
		`(?m)^danger +calendar +50% 80% +\+0s duty-officer → \+15m unit-head → \+30m street-supervisor → \+1h city-supervisor ×4$`,
		`(?m)^complex +working +80% `,
	} {
		if !regexp.MustCompile(want).MatchString(cats) {
			t.Errorf("categories does not show the policies' reminders and chains as %s:\n%s", want, cats)
		}
	}
	all := &whistlev1.ListCategoriesResponse{}
	e.okJSON("", all, "categories")
	if len(all.GetCategories()) == 0 {
		t.Errorf("categories --json lists no category")
	}
	for cmd, want := range map[string]string{"breaches": "No breaches.\n", "list": "No issues.\n"} {
		if out := e.ok("", cmd); out != want {
			t.Errorf("%s on a new system prints %q, want %q", cmd, out, want)
		}
	}
}

func TestFailuresExitNonZeroWithTheCodeOnStderr(t *testing.T) {
	e := start(t)
	worker := e.token(authx.RoleGridWorker, grid)
	cases := []struct {
		name string
		tok  string
		args []string
		want string
	}{
		{"an unknown case", worker, []string{"show", casenum.FromKey("never raised")}, "whistle: NotFound: "},
		{"a missing flag", worker, []string{"raise", "--category", "noise", "--text", "x"}, "whistle: InvalidArgument: --grid is required"},
		{"a bad urgency", worker, []string{"raise", "--grid", grid, "--category", "noise", "--text", "x", "--urgency", "soon"}, "whistle: InvalidArgument: --urgency must be one of normal, urgent, emergency"},
		{"a value the server refuses", worker, []string{"raise", "--grid", "no-such-grid", "--category", "noise", "--text", "x"}, "whistle: "},
		{"no token", "", []string{"areas"}, "whistle: Unauthenticated: "},
		{"text that is not UTF-8", worker, []string{"raise", "--grid", grid, "--category", "noise", "--text", "Drain \xff\xfe blocked"}, "whistle: InvalidArgument: --text: must be valid UTF-8"},
		{"a note that is not UTF-8", worker, []string{"resolve", casenum.FromKey("any"), "--note", "cleared \xc3"}, "whistle: InvalidArgument: --note: must be valid UTF-8"},
		{"a case number that is not UTF-8", worker, []string{"show", "K7M3-\xff"}, "whistle: InvalidArgument: argument 1: must be valid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, err := e.whistle(c.tok, c.args...)
			if err == nil {
				t.Fatalf("whistle %v succeeded, printing %q", c.args, out)
			}
			if !strings.HasPrefix(errOut, c.want) || strings.HasPrefix(errOut, "whistle: Unknown") || strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr = %q, want one line starting %q", errOut, c.want)
			}
		})
	}
	_, errOut, _ := e.whistle("", "areas")
	if !strings.Contains(errOut, "--token") || !strings.Contains(errOut, cli.TokenEnv) {
		t.Errorf("a call without a token does not say how to give one: %q", errOut)
	}
}
