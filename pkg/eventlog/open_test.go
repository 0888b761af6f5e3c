package eventlog_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
)

// streamConfig returns the named stream's configuration as the server holds it.
func streamConfig(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s.CachedInfo().Config
}

func TestOpeningTheLogLeavesTheConfigurationOfStreamsThatExistAsItIs(t *testing.T) {
	t.Parallel()
	nc := natstest.Connect(t, natstest.RunServer(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// An operator's own limits: none of them is what Open would create.
	for _, cfg := range []jetstream.StreamConfig{
		{Name: eventlog.StreamName, Description: "kept by the operator", Subjects: []string{"whistle.>"},
			Storage: jetstream.FileStorage, MaxAge: 90 * 24 * time.Hour, Duplicates: 10 * time.Minute, AllowDirect: true,
			Metadata: map[string]string{eventlog.LayoutKey: eventlog.Layout}},
		{Name: eventlog.DeadLetterStream, Description: "dead, kept a week", Subjects: []string{"whistle-dead.>"},
			Storage: jetstream.FileStorage, MaxAge: 7 * 24 * time.Hour},
	} {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]jetstream.StreamConfig{
		eventlog.StreamName:       streamConfig(t, js, eventlog.StreamName),
		eventlog.DeadLetterStream: streamConfig(t, js, eventlog.DeadLetterStream),
	}

	if _, err := eventlog.Open(ctx, nc, eventlog.Config{Replicas: 1, DuplicateWindow: time.Minute}); err != nil {
		t.Fatalf("open the log on existing streams: %v", err)
	}
	for name, want := range before {
		got := streamConfig(t, js, name)
		if got.Description != want.Description || got.MaxAge != want.MaxAge || got.Duplicates != want.Duplicates ||
			got.Replicas != want.Replicas {
			t.Errorf("Open changed %s: description %q, max age %s, duplicates %s, replicas %d; want %q, %s, %s, %d",
				name, got.Description, got.MaxAge, got.Duplicates, got.Replicas,
				want.Description, want.MaxAge, want.Duplicates, want.Replicas)
		}
	}
}

func TestOpeningTheLogWithOneReplicaKeepsAThreeReplicaStreamOnACluster(t *testing.T) {
	t.Parallel()
	servers := natstest.RunCluster(t, 3)
	nc := natstest.Connect(t, servers[0])
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// The first start on a cluster creates both streams with the replicas it is given.
	if _, err := eventlog.Open(ctx, nc, eventlog.Config{Replicas: 3}); err != nil {
		t.Fatalf("open the log on an empty cluster: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{eventlog.StreamName, eventlog.DeadLetterStream} {
		if got := streamConfig(t, js, name).Replicas; got != 3 {
			t.Fatalf("%s was created with %d replicas, want 3", name, got)
		}
	}

	// A later start configured for one replica must not shrink them.
	if _, err := eventlog.Open(ctx, natstest.Connect(t, servers[1]), eventlog.Config{Replicas: 1}); err != nil {
		t.Fatalf("open the log again: %v", err)
	}
	for _, name := range []string{eventlog.StreamName, eventlog.DeadLetterStream} {
		if got := streamConfig(t, js, name).Replicas; got != 3 {
			t.Errorf("opening with one replica left %s with %d replicas, want 3", name, got)
		}
	}
}

func TestOpeningTheLogCreatesMissingStreamsWithTheReplicasItIsGiven(t *testing.T) {
	t.Parallel()
	nc := natstest.Connect(t, natstest.RunServer(t))
	if _, err := eventlog.Open(t.Context(), nc, eventlog.Config{DuplicateWindow: 5 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	got := streamConfig(t, js, eventlog.StreamName)
	if got.Replicas != 1 || got.Duplicates != 5*time.Minute || got.Storage != jetstream.FileStorage {
		t.Errorf("created %s with %d replicas, duplicates %s, %s; want 1, 5m0s, file", eventlog.StreamName,
			got.Replicas, got.Duplicates, got.Storage)
	}
}
