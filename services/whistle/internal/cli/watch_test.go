package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/cli"
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
