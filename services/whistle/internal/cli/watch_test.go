package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/cli"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/systemtest"
)

// lockedBuffer is a buffer a running command writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// watching runs a streaming command until the returned stop is called, which reports how it ended.
func (e *env) watching(tok string, args ...string) (out *lockedBuffer, stop func() error) {
	root := &cobra.Command{Use: "whistle", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(cli.Commands()...)
	out = &lockedBuffer{}
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs(append(args, "--server", e.sys.GRPCAddr(), "--token", tok))
	ctx, cancel := context.WithCancel(e.t.Context())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	return out, func() error {
		cancel() // as Ctrl-C does
		return <-done
	}
}

// waitFor waits until out shows want.
func waitFor(t *testing.T, out *lockedBuffer, want string) {
	t.Helper()
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(out.String(), want) {
			return fmt.Errorf("the watch has not shown %q yet:\n%s", want, out.String())
		}
		return nil
	})
}

func TestWatchingAnInboxAndAnIssueShowsChangesLiveAndCtrlCEndsCleanly(t *testing.T) {
	e := start(t)
	worker := e.token(authx.RoleGridWorker, grid)
	water := e.token(authx.RoleOfficer, "water")

	inbox, stopInbox := e.watching(water, "inbox", "--watch")
	// Whether the raise lands before the watch begins (it shows in the inbox as it stands) or
	// after (it shows as a change), the case must appear.
	raised := e.ok(worker, "raise", "--grid", grid, "--category", "blocked-drain", "--text", "Drain blocked at the market")
	m := caseLine.FindStringSubmatch(raised)
	if m == nil {
		t.Fatalf("raise printed no case number:\n%s", raised)
	}
	id := m[1]
	waitFor(t, inbox, id)

	issue, stopIssue := e.watching(water, "watch", id)
	waitFor(t, issue, "routed")
	e.ok(water, "ack", id)
	waitFor(t, issue, "acknowledged")

	for name, stop := range map[string]func() error{"inbox --watch": stopInbox, "watch": stopIssue} {
		if err := stop(); err != nil {
			t.Errorf("%s stopped by Ctrl-C ended with %v; want a clean exit", name, err)
		}
	}
}

// runSystem brings up a whole Whistle on a data folder and gRPC address, as `whistle up --data
// dir --grpc addr` does; stop stops it, once, and runs when the test ends if the test did not.
func runSystem(t *testing.T, dir, addr string, opts ...func(*system.Options)) (sys *system.System, stop func()) {
	t.Helper()
	o := system.Options{DataDir: dir, GRPCAddr: addr, HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	sys, err := system.Start(t.Context(), o)
	if err != nil {
		t.Fatalf("start the system: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := sys.Stop(ctx); err != nil {
				t.Errorf("stop the system: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return sys, stop
}

func TestWatchesSayTheyAreWatchingAndCarryOnAcrossAServerRestartShowingNothingTwice(t *testing.T) {
	t.Setenv(cli.TokenEnv, "")
	dir := t.TempDir()
	sys, stopSys := runSystem(t, dir, "127.0.0.1:0")
	e := &env{t: t, sys: sys}
	worker, water := e.token(authx.RoleGridWorker, grid), e.token(authx.RoleOfficer, "water")
	supervisor := e.token(authx.RoleSupervisor, authx.CityScope)

	m := caseLine.FindStringSubmatch(e.ok(worker, "raise", "--grid", grid, "--category", "blocked-drain", "--text", "Drain blocked by the school"))
	if m == nil {
		t.Fatal("raise printed no case number")
	}
	id := m[1]
	issue, stopIssue := e.watching(worker, "watch", id)
	waitFor(t, issue, "routed")
	// The department's push of the assignment to its officer is a change of the item too: the
	// inbox watch starts once the department has applied it, so that it shows the item once
	// before the restart.
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		listed := &whistlev1.ListInboxResponse{}
		e.okJSON(water, listed, "inbox")
		if items := listed.GetItems(); len(items) != 1 || items[0].GetAssignment().GetOfficerId() == "" {
			return fmt.Errorf("the inbox holds %v, not yet pushed", items)
		}
		return nil
	})
	inbox, stopInbox := e.watching(water, "inbox", "--watch")
	waitFor(t, inbox, id)
	breaches, stopBreaches := e.watching(supervisor, "breaches", "--watch")
	waitFor(t, breaches, "Watching for breaches")
	if !strings.Contains(breaches.String(), "BREACHED             CASE       UNIT") {
		t.Errorf("breaches --watch shows no header in the columns of breaches:\n%s", breaches)
	}

	stopSys()
	for _, out := range []*lockedBuffer{issue, inbox, breaches} {
		waitFor(t, out, "reconnecting")
	}
	e.sys, _ = runSystem(t, dir, sys.GRPCAddr())
	for _, out := range []*lockedBuffer{issue, inbox, breaches} {
		wait.For(t, 30*time.Second, 50*time.Millisecond, func() error {
			if !strings.Contains(out.String(), "again") {
				return fmt.Errorf("the watch has not come back:\n%s", out)
			}
			return nil
		})
	}
	e.ok(water, "ack", id)
	waitFor(t, issue, "acknowledged")
	waitFor(t, inbox, "acknowledged")
	if n := strings.Count(issue.String(), " routed "); n != 1 {
		t.Errorf("watch shows the routed entry %d times across the restart; want once:\n%s", n, issue)
	}
	if n := strings.Count(inbox.String(), "dispatched "); n != 1 {
		t.Errorf("inbox --watch shows the dispatched item %d times across the restart; want once:\n%s", n, inbox)
	}
	for name, stop := range map[string]func() error{"watch": stopIssue, "inbox --watch": stopInbox, "breaches --watch": stopBreaches} {
		if err := stop(); err != nil {
			t.Errorf("%s stopped by Ctrl-C ended with %v; want a clean exit", name, err)
		}
	}
}

func TestBreachesWatchCarriesOnAcrossAServerRestartShowingEachBreachOnce(t *testing.T) {
	t.Setenv(cli.TokenEnv, "")
	dir := t.TempDir()
	// Report-in deadlines pass a second after dispatch, on the stream's clock, which is the real one.
	quick := func(o *system.Options) { o.CatalogPath = systemtest.QuickCatalog(t, time.Second, time.Hour) }
	sys, stopSys := runSystem(t, dir, "127.0.0.1:0", quick)
	e := &env{t: t, sys: sys}
	worker, supervisor := e.token(authx.RoleGridWorker, grid), e.token(authx.RoleSupervisor, authx.CityScope)
	raise := func(text string) string {
		m := caseLine.FindStringSubmatch(e.ok(worker, "raise", "--grid", grid, "--category", "blocked-drain", "--text", text))
		if m == nil {
			t.Fatal("raise printed no case number")
		}
		return m[1]
	}
	breaches, stopBreaches := e.watching(supervisor, "breaches", "--watch")
	waitFor(t, breaches, "Watching for breaches")
	first := raise("Drain blocked by the bakery")
	waitFor(t, breaches, first)

	// The second deadline passes while the server is down or as it comes back, and a third after
	// the watch is back: it shows each breach once (blocked drains summon two departments, each
	// with its deadline), the first ones not again.
	second := raise("Drain blocked by the bank")
	stopSys()
	waitFor(t, breaches, "reconnecting")
	e.sys, _ = runSystem(t, dir, sys.GRPCAddr(), quick)
	wait.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		if !strings.Contains(breaches.String(), "again") {
			return fmt.Errorf("the watch has not come back:\n%s", breaches)
		}
		return nil
	})
	third := raise("Drain blocked by the school")
	wait.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		if n := strings.Count(breaches.String(), " "+third+" "); n != 2 {
			return fmt.Errorf("the watch has shown %d breaches of %s:\n%s", n, third, breaches)
		}
		return nil
	})
	for _, id := range []string{first, second, third} {
		if n := strings.Count(breaches.String(), " "+id+" "); n != 2 {
			t.Errorf("breaches --watch shows %d breaches of %s across the restart; want its two, once each:\n%s", n, id, breaches)
		}
	}
	if err := stopBreaches(); err != nil {
		t.Errorf("breaches --watch stopped by Ctrl-C ended with %v; want a clean exit", err)
	}
}
