package bench

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
)

// A seeded floor appends each issue's events after an event of its own already in the stream,
// as the storm's breaches follow their issues' raises and dispatches: every append is conditional
// on a last sequence that is there (an append conditional on none would be refused), and the
// consumers are given only the appended events, not the seeds.
func TestASeededFloorAppendsEachIssueAfterAnEventOfItsOwnAndConsumesOnlyWhatItTimes(t *testing.T) {
	for name, appending := range map[string]floorAppends{"one at a time": oneAtATime(4), "in passes": inPasses(16)} {
		t.Run(name, func(t *testing.T) { testASeededFloor(t, appending) })
	}
}

// testASeededFloor runs a seeded floor of 40 issues, every third with a second event, appended as
// appending says: each append conditional on the issue's last sequence, so an event sent out of
// its issue's order, or before the seed, is refused and fails the run.
func testASeededFloor(t *testing.T, appending floorAppends) {
	nc := natstest.Connect(t, natstest.RunServer(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 40
	issues := make([][]floorEvent, n)
	events := uint64(0)
	for i := range issues {
		issue := fmt.Sprintf("FL%02d", i)
		prefix := fmt.Sprintf("%s.%d.%s.", floorRoot, i%eventlog.Partitions, issue)
		issues[i] = []floorEvent{{issue: issue, subject: prefix + "breached", id: issue + "-breach", data: []byte{}}}
		if i%3 == 0 {
			issues[i] = append(issues[i], floorEvent{issue: issue, subject: prefix + "escalated", id: issue + "-escalated", data: []byte{}})
		}
		events += uint64(len(issues[i]))
	}
	var stored, seeds, delivered uint64
	_, err = measureFloor(ctx, js, issues, true, 1, appending, io.Discard, func(ctx context.Context) func(context.Context) {
		return func(ctx context.Context) {
			stream, err := js.Stream(ctx, floorStream)
			if err != nil {
				t.Error(err)
				return
			}
			info, err := stream.Info(ctx, jetstream.WithSubjectFilter(floorRoot+".*.*.seed"))
			if err != nil {
				t.Error(err)
				return
			}
			stored, seeds = info.State.Msgs, uint64(len(info.State.Subjects))
			for p := range eventlog.Partitions {
				cons, err := stream.Consumer(ctx, fmt.Sprintf("floor-0-%d", p))
				if err != nil {
					t.Error(err)
					return
				}
				ci, err := cons.Info(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				delivered += ci.Delivered.Consumer
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if stored != n+events || seeds != n || delivered != events {
		t.Errorf("the floor's stream held %d messages, %d of them seeds, and its consumers were given %d; want %d, %d, %d",
			stored, seeds, delivered, n+events, n, events)
	}
}
