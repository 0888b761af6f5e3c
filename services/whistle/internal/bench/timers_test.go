package bench_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/services/whistle/internal/bench"
)

func TestATimerBenchRunFiresEveryDeadlineDueExactlyOnceAndPrintsEveryFigure(t *testing.T) {
	const deadlines, storm, rate, steady = 4000, 1000, 200, 2 * time.Second
	profile := filepath.Join(t.TempDir(), "storm.pprof")
	res, err := bench.RunTimers(t.Context(), bench.TimersConfig{Deadlines: deadlines, Storm: storm, Rate: rate, Duration: steady,
		Concurrency: 32, CPUProfile: profile})
	if err != nil {
		t.Fatal(err)
	}
	if res.Issues != deadlines/2 || res.Armed != deadlines {
		t.Errorf("%d deadlines armed over %d issues, want %d over %d", res.Armed, res.Issues, deadlines, deadlines/2)
	}
	if res.ArmWall <= 0 || res.Appended <= 0 {
		t.Errorf("arming took %s and its appends %s; both must be measured", res.ArmWall, res.Appended)
	}
	// Each open deadline is an entry of a sorted set: its name, its score and the set's own
	// structures, which cannot take fewer than the name's bytes nor several kilobytes.
	if per := float64(res.TimersBytes) / float64(res.Armed); per < 20 || per > 2000 {
		t.Errorf("the timers shards hold %.1f bytes per open deadline", per)
	}
	if res.UsedMemory <= res.TimersBytes || res.ScoreBytes <= 0 {
		t.Errorf("redis-server grew by %d bytes, the timers shards hold %d and the scorecard keys %d; the documents and scorecards must add to the timers",
			res.UsedMemory, res.TimersBytes, res.ScoreBytes)
	}

	for _, phase := range []struct {
		name string
		f    bench.Firing
		due  int
	}{{"storm", res.Storm, storm}, {"steady", res.Steady, rate * int(steady/time.Second)}} {
		f := phase.f
		if len(f.Due) != phase.due {
			t.Errorf("%s: %d deadlines fell due, want %d", phase.name, len(f.Due), phase.due)
		}
		// Every deadline due breached exactly once, counted by issue off the stream.
		for _, id := range f.Due {
			if n := f.Fired[id]; n != 1 {
				t.Errorf("%s: the report-in deadline of %s breached %d times", phase.name, id, n)
			}
		}
		if f.Stray != 0 || f.Once != len(f.Due) || f.Breaches != len(f.Due) || len(f.Lateness) != len(f.Due) {
			t.Errorf("%s: %d breached once, %d breaches in all, %d stray, %d lateness figures; want %d, %d, 0, %d",
				phase.name, f.Once, f.Breaches, f.Stray, len(f.Lateness), len(f.Due), len(f.Due), len(f.Due))
		}
		if slices.Min(f.Lateness) < 0 {
			t.Errorf("%s: a breach was stored %s before its deadline", phase.name, -slices.Min(f.Lateness))
		}
		if f.Rate() <= 0 || f.CPU <= 0 || f.RedisMissing != "" || f.RedisCPU <= 0 {
			t.Errorf("%s: %.0f breaches/s, CPU %s, redis-server CPU %s (%s); each must be measured", phase.name, f.Rate(), f.CPU, f.RedisCPU, f.RedisMissing)
		}
	}
	// The floor beneath the storm takes the storm's breaches again, every one of them, measured.
	if fl := res.StormFloor; fl.Events != res.Storm.Breaches || fl.Rate() <= 0 || fl.CPU <= 0 || fl.RedisMissing != "" {
		t.Errorf("the storm's floor appended %d events of the storm's %d breaches at %.0f/s, CPU %s, redis-server CPU %s (%s); want all of them, each figure measured",
			fl.Events, res.Storm.Breaches, fl.Rate(), fl.CPU, fl.RedisCPU, fl.RedisMissing)
	}
	// The storm's appends to the append-only file are counted with no rewrite among them, and the
	// rewrite after it is measured and charged to each breach by the bytes it appended.
	if st := res.Storm; st.AOFMissing != "" || st.AOFRewrites != 0 || st.AOFBytes < int64(st.Once) {
		t.Errorf("the storm appended %d bytes to the append-only file over %d breaches, with %d rewrites (%s); want a byte or more per breach and no rewrite",
			st.AOFBytes, st.Once, st.AOFRewrites, st.AOFMissing)
	}
	if rw := res.AOFRewrite; rw.Missing != "" || rw.CPU <= 0 || rw.Base <= 0 || rw.Percent != 100 || rw.Amortized(res.Storm.AOFBytes) <= 0 {
		t.Errorf("the rewrite after the storm took %s of CPU to a file of %d bytes, at %d%% (%s); want each measured, at redis-server's default 100%%",
			rw.CPU, rw.Base, rw.Percent, rw.Missing)
	}
	// The steady deadlines fall due over the whole phase, so their breaches cannot all be
	// stored in much less time.
	if res.Steady.Wall < steady/2 {
		t.Errorf("the steady phase's breaches were stored within %s of each other; its deadlines spread over %s", res.Steady.Wall, steady)
	}
	// One pass of the reconciliation over every issue, measured; a pass over a system that lost
	// no write puts nothing back.
	if rec := res.Reconciliation; rec.Wall <= 0 || rec.CPU <= 0 || rec.RedisMissing != "" || rec.RedisCPU <= 0 || rec.Repaired != 0 {
		t.Errorf("the reconciliation took %s, CPU %s, redis-server CPU %s (%s), and put back %d timers; want each measured and none put back",
			rec.Wall, rec.CPU, rec.RedisCPU, rec.RedisMissing, rec.Repaired)
	}
	if st, err := os.Stat(profile); err != nil || st.Size() == 0 {
		t.Errorf("no CPU profile of the storm was written: %v", err)
	}

	var out bytes.Buffer
	if err := res.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"deadlines armed/s", "Redis bytes per open deadline", "Redis bytes per issue",
		"storm (1000 report-in deadlines at one instant): breaches stored/s", "storm (1000 report-in deadlines at one instant): lateness p99",
		"storm floor: the storm's breaches appended again and consumed, JetStream alone: breaches/s",
		"storm floor: the storm's breaches appended again and consumed, JetStream alone: CPU per breach",
		"storm breaches/s ÷ floor breaches/s", "storm CPU per breach (process + redis-server) ÷ floor's",
		"storm: redis-server's append-only file: bytes appended per breach", "storm: CPU per breach, its share of the rewrites",
		"storm: CPU per breach in all",
		"steady (200/s for 2s): lateness p99", "reconciliation, one pass over 2000 issues", "reconciliation: CPU per 1,000 issues, redis-server",
		"load average before"} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the table has no row %q:\n%s", row, out.String())
		}
	}
}
