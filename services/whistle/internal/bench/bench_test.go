package bench_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/bench"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

func TestABenchRunCompletesEveryLifecycleAndPrintsEveryRow(t *testing.T) {
	const n = 20
	var log bytes.Buffer
	res, err := bench.Run(t.Context(), bench.Config{N: n, Concurrency: 4, Deadlines: 3, Sync: natsx.Sync{Always: true},
		Rate: 20, Duration: time.Second}, &log)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	if res.Completed != n || len(res.Inbox) != n || len(res.Publish) != n {
		t.Errorf("completed %d lifecycles with %d inbox latencies and %d publishes, want %d of each", res.Completed, len(res.Inbox), len(res.Publish), n)
	}
	if res.AsyncPublishes < n {
		t.Errorf("%d asynchronous publishes, want at least %d", res.AsyncPublishes, n)
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
	o := res.Open
	if o == nil {
		t.Fatal("no open loop ran with a rate of 20/s")
	}
	// Dropping an issue at 20 raises a second would take a stall of OpenLoopGrace; the counts
	// must add up either way.
	if o.Scheduled != 20 || o.Raised+o.RaiseFailed != o.Scheduled || o.Completed+o.NotInInbox+o.NotResolved != o.Raised || len(o.Late) != o.Scheduled {
		t.Errorf("open loop: %d scheduled, %d raised (%d failed), %d completed, %d not in the inbox, %d not resolved, %d send times; want 20 scheduled and every one accounted for",
			o.Scheduled, o.Raised, o.RaiseFailed, o.Completed, o.NotInInbox, o.NotResolved, len(o.Late))
	}
	if len(o.Inbox) != o.Completed+o.NotResolved {
		t.Errorf("open loop: %d inbox times for %d issues that showed in the inbox", len(o.Inbox), o.Completed+o.NotResolved)
	}
	// Every cost is measured on a system the bench starts, and each of these is spent by every
	// lifecycle, so none can be zero.
	for run, c := range map[string]bench.Cost{"closed loop": res.Closed, "open loop": o.Cost} {
		for name, d := range map[string]bench.Delta{
			"CPU": c.ProcessCPU, "redis-server CPU": c.RedisCPU, "Redis commands": c.RedisCommands,
			"Redis round trips": c.RedisRoundTrips, "NATS messages in": c.NATSIn, "NATS messages out": c.NATSOut,
			"watch deliveries": c.WatchDeliveries, "events": c.Events,
		} {
			if per, ok := c.Per(d); !ok || per <= 0 {
				t.Errorf("%s: %s per lifecycle is %v (measured: %v, %q); it must be measured and positive", run, name, per, ok, d.Missing)
			}
		}
		if c.ServerCPU.Missing == "" {
			t.Errorf("%s: the server's CPU was measured apart from this process's, though the system runs in it", run)
		}
		// A run may lose no append to another writer, but the count must be read.
		if _, ok := c.Per(c.Conflicts); !ok {
			t.Errorf("%s: the appends decided again were not measured: %s", run, c.Conflicts.Missing)
		}
	}
	// The floor appends the closed loop's events again and every service's consumers take them:
	// as many events, and at least one delivery of each to each of the four services.
	if f := res.Floor; f == nil {
		t.Error("no JetStream floor ran after the closed loop")
	} else {
		if f.Events != res.Closed.Events {
			t.Errorf("the floor appended %v events, the closed loop %v; it must append the same", f.Events, res.Closed.Events)
		}
		if out, ok := f.Per(f.NATSOut); !ok || out < 4*float64(res.Closed.Events.N)/n {
			t.Errorf("the floor's NATS server delivered %v messages per lifecycle (measured: %v); each event goes to four services", out, ok)
		}
		if per, ok := f.Per(f.ProcessCPU); !ok || per <= 0 {
			t.Errorf("the floor cost %v s of CPU per lifecycle (measured: %v); want it measured and positive", per, ok)
		}
	}
	for _, d := range append(append(res.Inbox, res.Publish...), res.Breach...) {
		if d <= 0 {
			t.Fatalf("a measured latency is %s; every one must be positive", d)
		}
	}
	checkStages(t, res, 6, n)
	var out bytes.Buffer
	if err := res.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{
		"| lifecycles (raise → dispatch → ack → resolve → verify) | 20 of 20 completed |",
		"| concurrency | 4 |", "| JetStream sync | always |",
		"| lifecycles/s |", "| raise → inbox p50 |", "| raise → inbox p99 |", "| raise → inbox max |",
		"| raw JetStream publish ops/s |", "| raw JetStream publish p50 |", "| raw JetStream publish p99 |",
		"| async JetStream publish ops/s (5000 publishes, at most 256 awaiting PubAck) |",
		"| lifecycles/s ÷ publish ops/s |", "| lifecycles/s ÷ async publish ops/s |", "| inbox p50 ÷ publish p50 |",
		"| open loop: raises scheduled (20/s for 1s) | 20 |", "| open loop: raises completed |", "| open loop: lifecycles completed |",
		"| open loop: dropped (not resolved within 30s of the last scheduled raise) |",
		"| open loop: lifecycles completed/s (first scheduled raise → last resolve) |",
		"| open loop: raise (scheduled) → inbox p50 |", "| open loop: raise (scheduled) → inbox p99 |",
		"| open loop: raise (scheduled) → inbox max |", "| open loop: raise sent after its scheduled time, max |",
		"| open loop: lifecycles/s ÷ async publish ops/s |", "| open loop: inbox p50 ÷ publish p50 |",
		"| Go | go", "| GOMAXPROCS |",
		"| events in the stream |", "| replay (4 services rebuild Redis) events/s |",
		"| raw pull + decode events/s (1 ordered consumer, no acks) |", "| replay events/s ÷ raw pull events/s |",
		"| CPU per event, replay (whistle process, its start included) |", "| CPU per event, raw pull |",
		"| issues quarantined by the replay | 0 |",
		"| report-in deadlines passed (limit 3s) | 6 |", "| deadlines spread over (first → last) |", "| breach recorded after deadline p50 (stream clock) |",
		"| breach recorded after deadline p99 (stream clock) |", "| breach recorded after deadline max (stream clock) |",
		"| breaches recorded/s (first deadline → last breach) |", "| breach p50 ÷ publish p50 |",
		"| JetStream floor: lifecycles/s (the closed loop's events appended and consumed, no service) |",
		"| lifecycles/s ÷ JetStream floor lifecycles/s |", "| CPU per lifecycle ÷ JetStream floor's (every process measured) |",
		"| cost per completed lifecycle | closed loop | open loop | JetStream floor (the closed loop's events, no service) |",
		"| CPU, whistle process (system and simulated callers) |", "| CPU, redis-server (INFO cpu) |",
		"| Redis commands (INFO commandstats) |", "| Redis round trips (whistle.redis.round_trips) |",
		"| appends decided again on a newer state (whistle.decide.conflicts) |",
		"| NATS messages in (server in_msgs) |", "| NATS messages out (server out_msgs) |",
		"| watch deliveries (the bench's WatchInbox streams) |", "| events appended to the stream |",
		"| stage of a closed-loop lifecycle, as far as its lead department (20 lifecycles) | clocks | p50 | p99 | share of the whole's mean |",
		"| intake: RaiseIssue sent → raised stored | bench → stream |", "| routing: raised stored → routed stored | stream |",
		"| department: routed stored → the lead's assignment on its officer's inbox watch | stream → bench |",
		"| officer reports in: on the watch → acknowledged stored | bench → stream |",
		"| officer resolves: acknowledged stored → resolved stored | stream |",
		"| the whole: RaiseIssue sent → the lead's resolved stored | bench → stream |",
		"slowest stage at p50: ", "routing's stage ranks ",
	} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the table has no row %q:\n%s", row, out.String())
		}
	}
	if strings.Contains(out.String(), "not measured") {
		t.Errorf("a cost was not measured on a system the bench started:\n%s", out.String())
	}
	t.Logf("\n%s", out.String())
}

func TestABenchRunOnAServerReadsTheServersCostsOffItsMetricsAndRedis(t *testing.T) {
	dir := t.TempDir()
	sys, err := system.Start(t.Context(), system.Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = sys.Stop(ctx)
	})
	users, err := natsx.ReadUsersConfig(filepath.Join(dir, system.UsersFile))
	if err != nil {
		t.Fatal(err)
	}
	natsURL, _ := url.Parse(sys.Deps().NATS.ConnectedUrl())
	for _, u := range users {
		if u.Username == system.ToolsUser {
			natsURL.User = url.UserPassword(u.Username, u.Password)
		}
	}

	var log bytes.Buffer
	res, err := bench.Run(t.Context(), bench.Config{
		N: 10, Concurrency: 2, Rate: 10, Duration: time.Second,
		Server: sys.GRPCAddr(), KeyFile: filepath.Join(dir, "token.key"), NATSURL: natsURL.String(),
		MetricsURLs: []string{"http://" + sys.HTTPAddr() + "/metrics"}, RedisURL: sys.RedisURL(),
	}, &log)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	if !res.Remote || res.Open == nil {
		t.Fatalf("a run with --server and --rate measured remote: %v, with an open loop: %v; want both", res.Remote, res.Open != nil)
	}
	for run, c := range map[string]bench.Cost{"closed loop": res.Closed, "open loop": res.Open.Cost} {
		for name, d := range map[string]bench.Delta{
			"the server's CPU": c.ServerCPU, "Redis round trips": c.RedisRoundTrips, "NATS messages out": c.NATSOut,
			"redis-server CPU": c.RedisCPU, "Redis commands": c.RedisCommands,
		} {
			if _, ok := c.Per(d); !ok {
				t.Errorf("%s: %s not measured: %s", run, name, d.Missing)
			}
		}
	}
	var out bytes.Buffer
	if err := res.Print(&out); err != nil {
		t.Fatal(err)
	}
	checkStages(t, res, 4, 10)
	for _, row := range []string{
		"| CPU, bench process (simulated callers) |", "| CPU, server processes (process_cpu_seconds_total of --metrics) |",
		"| routing: raised stored → routed stored | stream |",
		"| department and officer: routed stored → the lead's acknowledged stored | stream |",
		"| the whole: raised stored → the lead's resolved stored | stream |",
	} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the table has no row %q:\n%s", row, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

// checkStages checks that res split each of its n closed-loop lifecycles into stages (the
// given number, the whole among them) whose times are never negative and add up to the whole.
func checkStages(t *testing.T, res *bench.Result, stages, n int) {
	t.Helper()
	if len(res.Stages) != stages || res.StagesUntimed != 0 {
		t.Fatalf("%d stages, %d lifecycles untimed (%s); want %d stages and every lifecycle timed", len(res.Stages), res.StagesUntimed, res.StagesMissing, stages)
	}
	whole := res.Stages[stages-1]
	if !whole.Whole || len(whole.Times) != n {
		t.Fatalf("the last stage, %q, is the whole: %v, with %d times; want the whole with %d", whole.Name, whole.Whole, len(whole.Times), n)
	}
	for i := range n {
		var sum time.Duration
		for _, s := range res.Stages[:stages-1] {
			if len(s.Times) != n || s.Times[i] < 0 {
				t.Fatalf("stage %q has %d times, the %d-th %s; want %d, none negative", s.Name, len(s.Times), i, s.Times[min(i, len(s.Times)-1)], n)
			}
			sum += s.Times[i]
		}
		if sum != whole.Times[i] {
			t.Errorf("lifecycle %d: the stages add up to %s, the whole is %s", i, sum, whole.Times[i])
		}
	}
	if !slices.ContainsFunc(res.Stages, func(s bench.Stage) bool { return s.Name == bench.RoutingStage }) {
		t.Errorf("no stage is routing's, %q", bench.RoutingStage)
	}
}

func TestACostNotMeasuredSaysWhyUnderTheTable(t *testing.T) {
	res := &bench.Result{N: 1, Completed: 1, Wall: time.Second, Remote: true,
		Inbox: []time.Duration{time.Millisecond}, Publish: []time.Duration{time.Millisecond}, PublishWall: time.Second,
		AsyncPublishes: 1, AsyncPublishWall: time.Second,
		Closed: bench.Cost{Lifecycles: 1, NATSIn: bench.Delta{Missing: "no --metrics URL of the server was given"}}}
	var out bytes.Buffer
	if err := res.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| NATS messages in (server in_msgs) | not measured |",
		"- NATS messages in (server in_msgs): not measured: no --metrics URL of the server was given",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out.String())
		}
	}
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
