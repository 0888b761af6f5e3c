package natstest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
)

// streamConfig is one stream over whistle.> with the given replicas.
func streamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: "WHISTLE", Subjects: []string{"whistle.>"}, Replicas: replicas}
}

// lastOn returns the payload of the last message on subject.
func lastOn(ctx context.Context, s jetstream.Stream, subject string) (string, error) {
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return "", err
	}
	return string(m.Data), nil
}

func TestRunServerServesJetStream(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	js, err := jetstream.New(natstest.Connect(t, natstest.RunServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.CreateStream(ctx, streamConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "whistle.i1.raised", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got, err := lastOn(ctx, s, "whistle.i1.raised"); err != nil || got != "hello" {
		t.Fatalf("last message = %q, %v; want hello", got, err)
	}
}

func TestRestartServerKeepsTheStreamAndTheClientReconnects(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, streamConfig(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "whistle.i1.raised", []byte("before")); err != nil {
		t.Fatal(err)
	}

	restarted := natstest.RestartServer(t, srv)
	if restarted.ClientURL() != srv.ClientURL() {
		t.Fatalf("restarted on %s, want %s", restarted.ClientURL(), srv.ClientURL())
	}
	wait.For(t, 10*time.Second, 25*time.Millisecond, func() error {
		if !nc.IsConnected() {
			return errors.New("client not reconnected")
		}
		return nil
	})
	var s jetstream.Stream
	wait.For(t, 10*time.Second, 25*time.Millisecond, func() error {
		s, err = js.Stream(ctx, "WHISTLE")
		return err
	})
	if got, err := lastOn(ctx, s, "whistle.i1.raised"); err != nil || got != "before" {
		t.Fatalf("after restart last message = %q, %v; want before", got, err)
	}
}

func TestClusterKeepsAnR3StreamWorkingWhenANodeIsLost(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	servers := natstest.RunCluster(t, 3)
	js, err := jetstream.New(natstest.Connect(t, servers[0]))
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.CreateStream(ctx, streamConfig(3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "whistle.i1.raised", []byte("one")); err != nil {
		t.Fatal(err)
	}

	// Lose the stream's leader, the hardest node to lose, and talk to a survivor.
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var survivors []*server.Server
	var lost string
	for _, srv := range servers {
		if srv.Name() == info.Cluster.Leader {
			lost = srv.Name()
			srv.Shutdown()
			srv.WaitForShutdown()
			continue
		}
		survivors = append(survivors, srv)
	}
	if lost == "" {
		t.Fatalf("stream leader %q is not one of the cluster's nodes", info.Cluster.Leader)
	}
	natstest.WaitForMetaLeader(t, survivors)
	js, err = jetstream.New(natstest.Connect(t, survivors[0]))
	if err != nil {
		t.Fatal(err)
	}

	wait.For(t, 20*time.Second, 50*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		// The message id keeps a retried publish that did land from landing twice.
		_, err := js.Publish(ctx, "whistle.i1.acknowledged", []byte("two"), jetstream.WithMsgID("i1-ack"))
		return err
	})
	s, err = js.Stream(ctx, "WHISTLE")
	if err != nil {
		t.Fatal(err)
	}
	for subject, want := range map[string]string{"whistle.i1.raised": "one", "whistle.i1.acknowledged": "two"} {
		if got, err := lastOn(ctx, s, subject); err != nil || got != want {
			t.Fatalf("%s: last message = %q, %v; want %q", subject, got, err, want)
		}
	}
	info, err = s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster.Leader == lost || info.State.Msgs != 2 {
		t.Fatalf("after losing %s: leader %s, %d messages; want a new leader and 2 messages", lost, info.Cluster.Leader, info.State.Msgs)
	}
}
