package systemtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// A city of its own: one street on the harbour, two departments, one category.
const harbourCatalog = `
city:
  id: city
  name: Harbour Town
  streets:
    - id: harbour
      name: Harbour Street
      communities:
        - {id: harbour-pier, name: Pier Community, grids: [harbour-pier-01]}
departments:
  - {id: port-authority, name: Port Authority}
  - {id: lifeguards, name: Lifeguard Service}
policies:
  danger: {report_in: 10m, resolve: 1h}
  quick: {report_in: 20m, resolve: 3h}
categories:
  - {id: debris, name: Debris in the water, normal: quick}
`

const harbourRules = `
rules:
  - {id: debris, category: debris, lead: port-authority, assisting: [lifeguards]}
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestACityRunsOnItsOwnCatalogAndRules(t *testing.T) {
	clk := clock.NewFake(Epoch)
	opts := Options(t.TempDir(), clk)
	opts.CatalogPath = writeFile(t, "city.yaml", harbourCatalog)
	opts.RulesPath = writeFile(t, "rules.yaml", harbourRules)
	sys, err := system.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Stop(t, sys) })

	c := Dial(t, sys, GridWorker("harbour-pier-01"))
	issue := raise(t, c, "", "harbour-pier-01", "debris")
	got := waitForStatus(t, c, []string{issue.GetId()}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[issue.GetId()]
	var depts []string
	for _, a := range got.GetAssignments() {
		depts = append(depts, a.GetUnitId())
		// Deadlines run from the time the stream stored the raise.
		if by := a.GetReportInBy().AsTime().Sub(got.GetRaisedAt().AsTime()); by != 20*time.Minute {
			t.Errorf("%s must report in within %s; want the city's own 20m", a.GetUnitId(), by)
		}
	}
	if strings.Join(depts, ",") != "port-authority,lifeguards" {
		t.Errorf("dispatched to %v; want the city's own rule: port-authority, lifeguards", depts)
	}
	if _, err := c.Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{GridId: "xinhua-taoyuan-01", CategoryId: "debris", Text: "x"}); err == nil {
		t.Error("a grid of the sample city was accepted by a city that does not have it")
	}
}

func TestRulesThatNameWhatTheCatalogLacksStopTheStartWithTheReason(t *testing.T) {
	opts := Options(t.TempDir(), clock.NewFake(Epoch))
	opts.CatalogPath = writeFile(t, "city.yaml", harbourCatalog)
	opts.RulesPath = writeFile(t, "rules.yaml", strings.ReplaceAll(harbourRules, "lifeguards", "coastguard"))
	sys, err := system.Start(t.Context(), opts)
	if err == nil {
		Stop(t, sys)
		t.Fatal("a rules table naming an unknown department started")
	}
	if !strings.Contains(err.Error(), "coastguard") {
		t.Errorf("the error %q does not name the unknown department", err)
	}
}
