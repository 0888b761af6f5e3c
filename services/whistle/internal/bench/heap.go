package bench

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
)

// heapWork is what this process's Go heap has done so far: the bytes it allocated and the
// collections it completed. Over a firing, their growth says how much garbage the firing made and
// whether a collection, whose marking of the whole live heap is charged to whatever runs then,
// fell inside it.
type heapWork struct {
	Allocated, Collections uint64
}

// heapSoFar reads heapWork from the runtime's metrics.
func heapSoFar() heapWork {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(samples)
	return heapWork{Allocated: samples[0].Value.Uint64(), Collections: samples[1].Value.Uint64()}
}

// since is the work done from before until w.
func (w heapWork) since(before heapWork) heapWork {
	return heapWork{Allocated: w.Allocated - before.Allocated, Collections: w.Collections - before.Collections}
}

// writeAllocs writes this process's allocation profile to name+suffix; nothing when name is empty.
// It collects first, since the profile stands as of the last collection: the storm then starts
// and ends on a collection, so its other figures are not those of a run without the profile.
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
