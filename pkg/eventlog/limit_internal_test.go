package eventlog

import (
	"context"
	"fmt"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
)

// recorder is a projection that records what it is asked to do.
type recorder struct {
	applied []uint64
	marked  []quarantine.Mark
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Position(context.Context, string) (Position, error) {
	if len(r.marked) > 0 {
		m := r.marked[len(r.marked)-1]
		return Position{LastSeq: m.Seq, Quarantine: &m}, nil
	}
	return Position{}, nil
}
func (r *recorder) Apply(_ context.Context, rec Record) error {
	r.applied = append(r.applied, rec.Seq)
	return nil
}
func (r *recorder) Quarantine(_ context.Context, _ string, m quarantine.Mark) error {
	r.marked = append(r.marked, m)
	return nil
}

func TestAMessageDeliveredUpToTheLimitIsQuarantinedNotTriedAgain(t *testing.T) {
	// A message that came back DeliveryLimit times had its handler crash or hang each time; a
	// further try would only do that again.
	ctx := context.Background()
	l, err := Open(ctx, natstest.Connect(t, natstest.RunServer(t)), Config{})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	s := storedMsg{seq: 7, subject: Subject("A", "acknowledged")}
	s.rec.Seq = 7
	s.rec.Event, s.err = decodeOn(s.subject, s.data)
	if err := l.process(ctx, r, nil, s, DeliveryLimit); err != nil {
		t.Fatal(err)
	}
	if len(r.applied) != 0 || len(r.marked) != 1 || r.marked[0].Seq != 7 {
		t.Fatalf("applied %v, marked %v; want the message quarantined and not applied", r.applied, r.marked)
	}
	raw, err := l.dead.GetLastMsgForSubject(ctx, deadSubject("recorder", 7))
	if err != nil || raw.Header.Get(HeaderDeadDeliveries) != fmt.Sprint(DeliveryLimit) {
		t.Fatalf("dead letter %v, %v; want one saying it was delivered %d times", raw, err, DeliveryLimit)
	}
}
