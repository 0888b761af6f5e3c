package app

import (
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
)

// The lanes share no partition and together hold every partition once, so every timer has one
// lane, and an issue's timers (all in its partition's shard) are fired by one lane only.
func TestEveryPartitionBelongsToExactlyOneLane(t *testing.T) {
	lane := map[int]int{}
	for l := range FireLanes {
		ps := lanePartitions(l)
		if len(ps) == 0 {
			t.Errorf("lane %d has no partition", l)
		}
		for _, p := range ps {
			if other, taken := lane[p]; taken {
				t.Errorf("partition %d is in lanes %d and %d", p, other, l)
			}
			lane[p] = l
		}
	}
	if len(lane) != eventlog.Partitions {
		t.Errorf("the lanes hold %d partitions, want %d", len(lane), eventlog.Partitions)
	}
}
