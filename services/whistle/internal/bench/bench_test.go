package bench_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/bench"
)

func TestABenchRunCompletesEveryLifecycleAndPrintsEveryRow(t *testing.T) {
	const n = 20
	var log bytes.Buffer
	res, err := bench.Run(t.Context(), bench.Config{N: n, Concurrency: 4, Deadlines: 3, Sync: natsx.Sync{Always: true}}, &log)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	if res.Completed != n || len(res.Inbox) != n || len(res.Publish) != n {
		t.Errorf("completed %d lifecycles with %d inbox latencies and %d publishes, want %d of each", res.Completed, len(res.Inbox), len(res.Publish), n)
	}
	if len(res.Breach) != 6 { // three issues, each with a lead and an assisting department
		t.Errorf("%d breaches timed, want 6", len(res.Breach))
	}
	if res.Pulled == 0 || uint64(res.Pulled) != res.Replay.Events {
		t.Errorf("the raw pull decoded %d events and the replay applied %d; both must read the whole stream", res.Pulled, res.Replay.Events)
	}
	for name, n := range res.Replay.Quarantined {
		if n != 0 {
			t.Errorf("the replay quarantined %d issues in %s; the lifecycles' events must all apply", n, name)
		}
	}
	if res.CPU <= 0 {
		t.Errorf("the lifecycles used %s of CPU; it must be measured", res.CPU)
	}
	for _, d := range append(append(res.Inbox, res.Publish...), res.Breach...) {
		if d <= 0 {
			t.Fatalf("a measured latency is %s; every one must be positive", d)
		}
	}
	var out bytes.Buffer
	if err := res.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{
		"| lifecycles (raise → dispatch → ack → resolve) | 20 of 20 completed |",
		"| concurrency | 4 |", "| JetStream sync | always |", "| CPU per lifecycle (whistle process) |",
		"| lifecycles/s |", "| raise → inbox p50 |", "| raise → inbox p99 |", "| raise → inbox max |",
		"| raw JetStream publish ops/s |", "| raw JetStream publish p50 |", "| raw JetStream publish p99 |",
		"| lifecycles/s ÷ publish ops/s |", "| inbox p50 ÷ publish p50 |", "| Go | go", "| GOMAXPROCS |",
		"| events in the stream |", "| replay (4 services rebuild Redis) events/s |",
		"| raw pull + decode events/s (1 ordered consumer, no acks) |", "| replay events/s ÷ raw pull events/s |",
		"| CPU per event, replay (whistle process, its start included) |", "| CPU per event, raw pull |",
		"| issues quarantined by the replay | 0 |",
		"| report-in deadlines passed (limit 3s) | 6 |", "| deadlines spread over (first → last) |", "| breach recorded after deadline p50 (stream clock) |",
		"| breach recorded after deadline p99 (stream clock) |", "| breach recorded after deadline max (stream clock) |",
		"| breaches recorded/s (first deadline → last breach) |", "| breach p50 ÷ publish p50 |",
	} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the table has no row %q:\n%s", row, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

func TestPercentileTakesTheNearestRank(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range n {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	cases := []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"no values", nil, 50, 0},
		{"one value", ms(7), 99, 7 * time.Millisecond},
		{"the median of an even count", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of a hundred", ms(rangeTo(100)...), 99, 99 * time.Millisecond},
		{"the maximum", ms(5, 9, 1), 100, 9 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := bench.Percentile(c.ds, c.p); got != c.want {
				t.Errorf("Percentile(%v, %v) = %s, want %s", c.ds, c.p, got, c.want)
			}
		})
	}
}

// rangeTo is 1..n.
func rangeTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i + 1
	}
	return s
}
