package bench

import (
	"runtime"
	"testing"
)

// A collection is counted as having run during some work whether it began, ended, or both
// inside it.
func TestACollectionRanDuringTheWorkIfItBeganOrEndedInIt(t *testing.T) {
	for _, c := range []struct {
		name string
		work heapWork
		want uint64
	}{
		{"none", heapWork{}, 0},
		{"began and ended inside", heapWork{Collections: 1, Pauses: 2}, 1},
		{"began before, ended inside", heapWork{Collections: 1, Pauses: 1}, 1},
		{"began inside, ended after", heapWork{Collections: 0, Pauses: 1}, 1},
		{"one inside, one begun", heapWork{Collections: 1, Pauses: 3}, 2},
		{"two inside", heapWork{Collections: 2, Pauses: 4}, 2},
	} {
		if got := c.work.Ran(); got != c.want {
			t.Errorf("%s: %+v ran %d collections, want %d", c.name, c.work, got, c.want)
		}
	}
}

// The runtime's metrics see a forced collection complete, with a pause at its start and its end.
func TestHeapSoFarSeesACollection(t *testing.T) {
	before := heapSoFar()
	runtime.GC()
	got := heapSoFar().since(before)
	if got.Collections < 1 || got.Pauses < 2 || got.Ran() < 1 {
		t.Fatalf("a forced collection read as %+v, ran %d", got, got.Ran())
	}
}
