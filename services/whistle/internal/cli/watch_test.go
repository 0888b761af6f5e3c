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
	"github.com/whistle-dispatch/whistle/services/whistle/internal/cli"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
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
func runSystem(t *testing.T, dir, addr string) (sys *system.System, stop func()) {
	t.Helper()
	sys, err := system.Start(t.Context(), system.Options{
		DataDir: dir, GRPCAddr: addr, HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
	})
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
	inbox, stopInbox := e.watching(water, "inbox", "--watch")
	waitFor(t, inbox, id)
	breaches, stopBreaches := e.watching(supervisor, "breaches", "--watch")
	waitFor(t, breaches, "Watching for breaches")
	if !strings.Contains(breaches.String(), "BREACHED             CASE       DEPARTMENT") {
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
