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
	nc := natstest.Connect(t, natstest.RunServer(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 40
	issues := make([][]floorEvent, n)
	for i := range issues {
		issue := fmt.Sprintf("FL%02d", i)
		subject := fmt.Sprintf("%s.%d.%s.breached", floorRoot, i%eventlog.Partitions, issue)
		issues[i] = []floorEvent{{issue: issue, subject: subject, id: issue + "-breach", data: []byte{}}}
	}
	var stored, seeds, delivered uint64
	_, err = measureFloor(ctx, js, issues, true, 1, 4, io.Discard, func(ctx context.Context) func(context.Context) {
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
	if stored != 2*n || seeds != n || delivered != n {
		t.Errorf("the floor's stream held %d messages, %d of them seeds, and its consumers were given %d; want %d, %d, %d",
			stored, seeds, delivered, 2*n, n, n)
	}
}
