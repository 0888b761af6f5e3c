package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
)

// shortCatalog writes a copy of the sample city in which the general policy's report-in limit
// (noise, among others) is one second, so that a test sees a breach soon, and returns its path.
func shortCatalog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "services", "internal", "catalog", "city.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s+general: \{report_in: )\w+`)
	if len(re.FindAll(b, -1)) != 1 {
		t.Fatal("the sample city's general policy is not where this test looks for it")
	}
	path := filepath.Join(t.TempDir(), "city.yaml")
	if err := os.WriteFile(path, re.ReplaceAll(b, []byte("${1}1s")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// exportedNames are the sample names of a Prometheus text exposition: histograms' _bucket,
// _sum and _count and counters' _total as they are written.
func exportedNames(exposition string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(exposition) {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// issueID reads the case number from `whistle raise --json`.
func issueID(t *testing.T, raised string) string {
	t.Helper()
	var r struct {
		Issue struct {
			ID string `json:"id"`
		} `json:"issue"`
	}
	if err := json.Unmarshal([]byte(raised), &r); err != nil || r.Issue.ID == "" {
		t.Fatalf("raise printed %q: %v", raised, err)
	}
	return r.Issue.ID
}

// usersFile reads the NATS users `whistle up` wrote, by name.
func usersFile(t *testing.T, data string) map[string]natsUser {
	t.Helper()
	users, err := natsUsersOfFile(filepath.Join(data, "nats-users.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// quarantineOne publishes an event no service can decode on a new issue's subject, as the intake
// service's user, so that every service quarantines it.
func quarantineOne(t *testing.T, w *whistleUp) {
	t.Helper()
	intake := usersFile(t, w.data)["intake"]
	nc, err := nats.Connect(w.natsURL(t), nats.UserInfo("intake", intake.Password))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(eventlog.Subject("QQQQ-QQQQ", "raised"), []byte("not an event")); err != nil {
		t.Fatal(err)
	}
}

func TestEveryMetricTheAlertsAndTheDashboardNameIsOneTheProgramExports(t *testing.T) {
	t.Parallel()
	names, err := metricNames(operatorQueries(t))
	if err != nil {
		t.Fatal(err)
	}
	w := startWhistle(t, shortCatalog(t))
	ctx := t.Context()

	// A whole lifecycle: raised, routed, reported in and resolved within the limits.
	grid := "xinhua-taoyuan-01"
	worker := w.token(t, "grid-worker", grid)
	out, err := w.call(ctx, worker, "raise", "--grid", grid, "--category", "blocked-drain", "--text", "Drain blocked", "--request-id", "deploy-1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	id := issueID(t, out)
	water := w.token(t, "officer", "water")
	wait.For(t, time.Minute, 100*time.Millisecond, func() error {
		_, err := w.call(ctx, water, "ack", id) // refused until routing has dispatched it
		return err
	})
	if _, err := w.call(ctx, water, "resolve", id, "--note", "Cleared"); err != nil {
		t.Fatal(err)
	}
	// An issue nobody reports in for: its one-second limit passes and escalation records breaches.
	if _, err := w.call(ctx, worker, "raise", "--grid", grid, "--category", "noise", "--text", "Noise at night", "--request-id", "deploy-2"); err != nil {
		t.Fatal(err)
	}
	// A refused call, for the error counts.
	if _, err := w.call(ctx, water, "ack", "ZZZZ-ZZZZ"); err == nil {
		t.Fatal("acknowledging an unknown case succeeded")
	}
	// An event no service can apply, for the quarantine counts.
	quarantineOne(t, w)

	want := slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !slices.Contains(prometheusOwn, n) && !yield(n) {
				return
			}
		}
	})
	var missing []string
	wait.For(t, 2*time.Minute, 250*time.Millisecond, func() error {
		body, err := w.metrics(ctx)
		if err != nil {
			return err
		}
		exported := exportedNames(body)
		if missing = unexported(names, exported); len(missing) > 0 {
			return fmt.Errorf("/metrics has none of:\n  %s\nafter a lifecycle, a breach, a refused call and a quarantine", strings.Join(missing, "\n  "))
		}
		for _, series := range []string{`whistle_breaches_total{department="environment"`, `street="xinhua"`, `whistle_consumer_lag{consumer="escalation"`, `partition="7"`} {
			if !strings.Contains(body, series) {
				return fmt.Errorf("/metrics has no series with %s, which the dashboard groups by", series)
			}
		}
		return nil
	})
	t.Logf("the operator's view reads %d metrics, each exported: %s", len(want), strings.Join(want, ", "))
}
