package system_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
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
	// Escalation is denied every purge; intake, which removes photos, is denied the record's
	// streams by name.
	for _, user := range []string{"escalation", "intake"} {
		nc, err := nats.Connect(url, nats.UserInfo(user, passwords[user]))
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
			t.Errorf("%s deleted the stream", user)
		}
		for _, name := range []string{eventlog.StreamName, eventlog.DeadLetterStream} {
			s, err := js.Stream(t.Context(), name)
			if err != nil {
				t.Fatalf("%s cannot read the stream %s it runs on: %v", user, name, err)
			}
			ctx, cancel = context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if err := s.Purge(ctx); err == nil {
				t.Errorf("%s purged the stream %s", user, name)
			}
		}
	}
}

func TestOnlyIntakeRemovesPhotosAndIntakeAndTheDepartmentWriteThem(t *testing.T) {
	t.Parallel()
	_, url, passwords := startForCredentials(t)
	connect := func(user string) *nats.Conn {
		nc, err := nats.Connect(url, nats.UserInfo(user, passwords[user]))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	intake, err := evidence.Open(t.Context(), connect("intake"), evidence.Config{})
	if err != nil {
		t.Fatalf("intake cannot open the photo bucket: %v", err)
	}
	ph, err := intake.Put(t.Context(), "wang", evidence.Purpose{GridID: "g"}, tinyPNG(t))
	if err != nil {
		t.Fatalf("intake cannot store a photo: %v", err)
	}
	dept, err := evidence.Open(t.Context(), connect("department"), evidence.Config{})
	if err != nil {
		t.Fatalf("the department cannot open the photo bucket: %v", err)
	}
	if _, err := dept.Claim(t.Context(), "wang", evidence.Purpose{GridID: "g"}, "CASE-0001", "photo_ids", []string{ph.ID}, 1); err != nil {
		t.Fatalf("the department cannot claim a photo: %v", err)
	}
	later, err := evidence.Open(t.Context(), connect("intake"), evidence.Config{Clock: clock.NewFake(time.Now().Add(2 * evidence.PendingTTL))})
	if err != nil {
		t.Fatal(err)
	}
	res, err := later.Sweep(t.Context(), func(context.Context, string, string) (bool, error) { return false, nil })
	if err != nil || res.Removed != 1 {
		t.Fatalf("intake's sweep = %+v, %v; want the photo removed", res, err)
	}
	routing, err := evidence.Open(t.Context(), connect("routing"), evidence.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := routing.Put(ctx, "wang", evidence.Purpose{GridID: "g"}, tinyPNG(t)); err == nil {
		t.Error("routing stored a photo")
	}
}

// tinyPNG is a one-pixel PNG.
func tinyPNG(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
