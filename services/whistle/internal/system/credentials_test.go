package system_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// startForCredentials starts a whole system on a fresh folder and returns it with the URL of
// its embedded NATS and the passwords of the users it wrote.
func startForCredentials(t *testing.T) (*system.System, string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	sys, err := system.Start(t.Context(), system.Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start the system: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sys.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	path := filepath.Join(dir, system.UsersFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("up wrote no users file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %o, want 600: it holds passwords", system.UsersFile, st.Mode().Perm())
	}
	users, err := natsx.ReadUsersConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	passwords := map[string]string{}
	for _, u := range users {
		passwords[u.Username] = u.Password
	}
	return sys, sys.Deps().NATS.ConnectedUrl(), passwords
}

// Bounds of a publish: one the server refuses gets no PubAck at all, so the wait is what
// ends it, and is short; one it accepts has a machine's worst moment to arrive.
const (
	refusedWithin  = time.Second
	acceptedWithin = 10 * time.Second
)

// publishAs publishes one message to subject through JetStream as user and returns the error,
// which is nil only when the stream acknowledged it within wait.
func publishAs(t *testing.T, url, user, password, subject string, wait time.Duration) error {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, password))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	_, err = js.Publish(ctx, subject, []byte("not an event"))
	return err
}

func TestTheEmbeddedNATSRefusesAConnectionWithoutCredentials(t *testing.T) {
	t.Parallel()
	_, url, passwords := startForCredentials(t)
	for name, opts := range map[string][]nats.Option{
		"no credentials":   nil,
		"a wrong password": {nats.UserInfo("department", "guess")},
		"an unknown user":  {nats.UserInfo("mallory", passwords["department"])},
	} {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected; want an authorization error", name)
		}
	}
}

func TestEachServiceUserPublishesOnlyTheEventsItsServiceOwns(t *testing.T) {
	t.Parallel()
	sys, url, passwords := startForCredentials(t)
	stream := func() uint64 {
		info, err := sys.Deps().Log.StreamInfo(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	for service, kinds := range system.EventKinds {
		for _, kind := range kinds {
			if err := publishAs(t, url, service, passwords[service], eventlog.Subject("OWN1-"+service, kind), acceptedWithin); err != nil {
				t.Errorf("%s could not publish its own %s: %v", service, kind, err)
			}
		}
	}
	// Every service may publish its dead letters.
	if err := publishAs(t, url, "department", passwords["department"], eventlog.DeadLetterRoot+".department", acceptedWithin); err != nil {
		t.Errorf("department could not publish a dead letter: %v", err)
	}

	before := stream()
	for service, owned := range system.EventKinds {
		for other, kinds := range system.EventKinds {
			if other == service {
				continue
			}
			for _, kind := range kinds {
				if err := publishAs(t, url, service, passwords[service], eventlog.Subject("X", kind), refusedWithin); err == nil {
					t.Errorf("%s (owning %v) published %s's %s", service, owned, other, kind)
				}
			}
		}
	}
	if err := publishAs(t, url, system.ToolsUser, passwords[system.ToolsUser], eventlog.Subject("X", "raised"), refusedWithin); err == nil {
		t.Errorf("the tools user published an event")
	}
	if after := stream(); after != before {
		t.Errorf("the stream grew from %d to %d events on publishes that were refused", before, after)
	}
}

func TestAServiceUserCannotDeleteOrPurgeTheStream(t *testing.T) {
	t.Parallel()
	_, url, passwords := startForCredentials(t)
	nc, err := nats.Connect(url, nats.UserInfo("escalation", passwords["escalation"]))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, eventlog.StreamName); err == nil {
		t.Error("a service user deleted the stream")
	}
	s, err := js.Stream(t.Context(), eventlog.StreamName)
	if err != nil {
		t.Fatalf("a service user cannot read the stream it runs on: %v", err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := s.Purge(ctx); err == nil {
		t.Error("a service user purged the stream")
	}
}
