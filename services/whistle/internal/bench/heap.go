package bench

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
)

// heapWork is what this process's Go heap has done so far: the bytes it allocated, the
// collections it completed, and the stop-the-world pauses of collections, two a collection (one
// as it starts, one as it ends). Over a firing, their growth says how much garbage the firing made
// and whether a collection, whose marking of the whole live heap is charged to whatever runs then,
// ran during it: one that starts inside and ends after it completes nothing inside it, but pauses
// once.
type heapWork struct {
	Allocated, Collections, Pauses uint64
}

// heapSoFar reads heapWork from the runtime's metrics.
func heapSoFar() heapWork {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(samples)
	var pauses uint64
	for _, n := range samples[2].Value.Float64Histogram().Counts {
		pauses += n
	}
	return heapWork{Allocated: samples[0].Value.Uint64(), Collections: samples[1].Value.Uint64(), Pauses: pauses}
}

// since is the work done from before until w.
func (w heapWork) since(before heapWork) heapWork {
	return heapWork{Allocated: w.Allocated - before.Allocated, Collections: w.Collections - before.Collections,
		Pauses: w.Pauses - before.Pauses}
}

// Ran is how many collections ran during the work, at least in part, read from its pauses P and
// its completions C: a collection inside it gives two pauses and one completion, one that ended in
// it one and one, one that began in it one and none. With at most one collection across each end,
// that is max(C, P-C). Two collections that each straddle one end count as one; firings of
// seconds, between collections seconds apart, do not meet that.
func (w heapWork) Ran() uint64 {
	if w.Pauses <= w.Collections {
		return w.Collections
	}
	return max(w.Collections, w.Pauses-w.Collections)
}

// writeAllocs writes this process's allocation profile to name+suffix; nothing when name is empty.
// It collects first, since the profile stands as of the last collection: the storm then ends on a
// collection, so its other figures are not those of a run without the profile.
func writeAllocs(name, suffix string) error {
	if name == "" {
		return nil
	}
	runtime.GC()
	f, err := os.Create(name + suffix)
	if err != nil {
		return fmt.Errorf("bench timers: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		return fmt.Errorf("bench timers: %w", err)
	}
	return f.Close()
}
