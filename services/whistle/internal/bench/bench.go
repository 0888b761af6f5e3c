// Package bench measures Whistle end to end: it drives complete issue lifecycles (raise,
// dispatch, acknowledge, resolve) through the public gRPC API with simulated duty officers,
// in a closed loop (each caller waits for its lifecycle before the next) and optionally an open
// one (raises at a fixed rate, whatever became of the earlier ones), counts what each lifecycle
// cost in CPU, Redis and NATS, and sets the figures beside raw JetStream publishes on the same
// NATS, so that the cost of the whole pipeline reads as a multiple of the one write it cannot
// avoid. `whistle bench routing` (RunRouting) measures, in this process and with no server, what
// routing spends per issue finding a point's grid and explaining a route; `whistle bench timers`
// (RunTimers) what the escalation service's deadline timers cost in Redis, and how fast and how
// late they fire, a million of them open at once.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// Config says how much to measure, and against which system.
type Config struct {
	// N is the number of lifecycles, and of raw publishes in the baseline.
	N int
	// Concurrency is how many lifecycles (and publishes) are in flight at once.
	Concurrency int
	// Server, when set, is the gRPC address of a running Whistle to measure instead of
	// one started in this process; KeyFile and NATSURL must then be set too.
	Server string
	// KeyFile is that server's token signing key, to mint the raiser's and officers' tokens.
	KeyFile string
	// NATSURL is that server's NATS, for the baseline.
	NATSURL string
	// MetricsURLs are, with Server, the /metrics of that server's processes (one for whistle up,
	// one per service for whistle serve), read for their CPU and Redis round trips, and for the
	// NATS messages when NATS runs embedded in one of them; none leaves those unmeasured.
	MetricsURLs []string
	// RedisURL is, with Server, that server's Redis, read for its CPU and commands; empty leaves
	// them unmeasured.
	RedisURL string
	// NATSVarzURL is, with Server, the monitoring endpoint (/varz) of that server's NATS, read for
	// its messages in place of /metrics.
	NATSVarzURL string
	// Rate is the open loop's raises per second; 0 skips the open loop.
	Rate float64
	// Duration is how long the open loop schedules raises for.
	Duration time.Duration
	// Deadlines is how many issues the deadline phase raises and leaves unanswered, on a
	// system of its own whose catalog sets a report-in limit of DeadlineReportIn, so that
	// every one of their report-in deadlines passes; 0 skips it, and so does --server, whose
	// catalog the bench cannot choose.
	Deadlines int
	// Sync is how often the systems the bench starts flush JetStream to disk (whistle up
	// --sync), so that its cost can be measured; it does not apply with --server.
	Sync natsx.Sync
}

// Result is what one run measured.
type Result struct {
	// N and Concurrency are the run's settings.
	N, Concurrency int
	// Completed is how many lifecycles ended with every assignment resolved.
	Completed int
	// Wall is how long the N lifecycles took, first raise to last resolve.
	Wall time.Duration
	// Remote says the system measured ran elsewhere (--server), so that this process's CPU is
	// the simulated callers' alone.
	Remote bool
	// Closed is what the N lifecycles cost, read from the moment the system was idle before
	// the first raise until it was idle again after the last resolve.
	Closed Cost
	// ClosedEvents are the stream sequences the closed loop's events lie after and end at.
	ClosedEvents [2]uint64
	// Floor is what the closed loop's events cost JetStream alone (runFloor), per lifecycle of
	// the closed loop, and FloorWall how long it took; nil when it did not run.
	Floor     *Cost
	FloorWall time.Duration
	// Sync is the JetStream flush setting of the system measured.
	Sync natsx.Sync
	// Inbox holds, per lifecycle, the time from the RaiseIssue call to the lead
	// department's assignment appearing on its WatchInbox stream.
	Inbox []time.Duration
	// Stages are the closed loop's lifecycles split into stages, routing's among them, each
	// timed per lifecycle; StagesUntimed is how many lifecycles lacked an event to time them
	// by, and StagesMissing why there are no stages, when there are none.
	Stages        []Stage
	StagesUntimed int
	StagesMissing string
	// PublishWall is how long the N raw publishes took.
	PublishWall time.Duration
	// Publish holds each raw publish's round trip.
	Publish []time.Duration
	// AsyncPublishes is how many asynchronous publishes the baseline made, at most AsyncWindow
	// awaiting their PubAck at once, and AsyncPublishWall how long they took, first publish to
	// last PubAck.
	AsyncPublishes   int
	AsyncPublishWall time.Duration
	// Open is the open-loop run, on a system of its own unless with --server; nil when none ran.
	Open *OpenLoop
	// Pulled is how many events a raw read of the lifecycles' stream decoded, PullWall how
	// long it took and PullCPU the processor time this process spent on it.
	Pulled   int
	PullWall time.Duration
	PullCPU  time.Duration
	// Replay is what system.Replay reported rebuilding every service's state from the
	// lifecycles' stream, after the system stopped; ReplayCPU is this process's processor
	// time over the whole call (starting NATS and Redis included, the redis-server child not).
	Replay    system.ReplayResult
	ReplayCPU time.Duration
	// DeadlineReportIn is the report-in limit of the deadline phase's issues.
	DeadlineReportIn time.Duration
	// DeadlineSpread is how far apart the first and last of those deadlines fell: the raises'
	// pace, which decides how many breaches are due at once.
	DeadlineSpread time.Duration
	// BreachWall is the time from the first deadline to the last breach stored, both on the
	// stream's clock: how long the escalation service took to record them all.
	BreachWall time.Duration
	// Breach holds, per passed deadline, how late its breach was recorded on the stream's
	// clock: the breach's breached_at (when the stream stored it) less its deadline (set
	// from when the stream stored the raise).
	Breach []time.Duration
}

// Command returns `whistle bench`.
func Command() *cobra.Command {
	cfg := Config{}
	var sync string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure end-to-end issue lifecycles and what each costs, against raw JetStream publishes",
		Long: "bench starts a Whistle in this process (or uses --server), drives N complete lifecycles " +
			"(raise, dispatch, acknowledge, resolve) with simulated duty officers, --concurrency at once, " +
			"then, with --rate, raises --rate issues a second for --duration whatever became of the earlier " +
			"ones (an open loop), and counts what each lifecycle cost: CPU, redis-server CPU, Redis commands " +
			"and round trips, NATS messages and watch deliveries. It splits each closed-loop lifecycle into " +
			"stages (intake, routing, the lead department's watch, its report-in and resolve) by the times the " +
			"stream stored its events. It measures synchronous and asynchronous " +
			"raw JetStream publishes on the same NATS, then (on a system it started) reads the stream raw, " +
			"stops the system and replays it, and, on a second system whose deadline category reports " +
			"in within " + DeadlineReportIn.String() + ", measures how late breaches are recorded; it " +
			"prints every figure as markdown tables. `whistle bench routing` measures routing's lookups alone, " +
			"and `whistle bench timers` the escalation service's deadline timers.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			var err error
			if cfg.Sync, err = natsx.ParseSync(sync); err != nil {
				return fmt.Errorf("bench: --sync: %w", err)
			}
			res, err := Run(cmd.Context(), cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return res.Print(cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVarP(&cfg.N, "n", "n", 500, "number of lifecycles in the closed loop (and of synchronous raw publishes)")
	cmd.Flags().IntVar(&cfg.Concurrency, "concurrency", 16, "lifecycles (and publishes) in flight at once in the closed loop")
	cmd.Flags().Float64Var(&cfg.Rate, "rate", 0, "open loop: issues raised per second, each on time whatever became of the earlier ones; 0 skips the open loop")
	cmd.Flags().DurationVar(&cfg.Duration, "duration", time.Minute, "open loop: how long to raise issues at --rate")
	cmd.Flags().StringVar(&cfg.Server, "server", "", "gRPC address of a running Whistle; default: start one in this process")
	cmd.Flags().StringVar(&cfg.KeyFile, "key", "", "with --server: that server's token signing key file")
	cmd.Flags().StringVar(&cfg.NATSURL, "nats", "", "with --server: that server's NATS URL, for the baseline")
	cmd.Flags().StringArrayVar(&cfg.MetricsURLs, "metrics", nil, "with --server: the /metrics URL of a process of that server (repeat for each), for its CPU, Redis round trips and embedded NATS's messages")
	cmd.Flags().StringVar(&cfg.RedisURL, "redis", "", "with --server: that server's Redis URL, for redis-server's CPU and commands")
	cmd.Flags().StringVar(&cfg.NATSVarzURL, "nats-varz", "", "with --server: the /varz URL of that server's NATS monitoring endpoint, for its messages")
	cmd.Flags().IntVar(&cfg.Deadlines, "deadlines", 200, "issues raised and left to breach their report-in deadlines in the deadline phase; 0 skips it")
	cmd.Flags().StringVar(&sync, "sync", "default", "JetStream flush of the systems bench starts, as whistle up --sync: always, a duration, or default")
	cmd.AddCommand(routingCommand(), timersCommand())
	return cmd
}

// maxOpenLoopRaises bounds the open loop, whose every raise is a goroutine and a record.
const maxOpenLoopRaises = 10_000_000

// runTimeout bounds a whole run, so that a system that stops answering ends the bench.
const runTimeout = 10 * time.Minute

// target is the system under measurement: where to call, how to mint tokens, and its NATS.
type target struct {
	addr string
	auth *authx.Authority
	nc   *nats.Conn
	// sys is the system started in this process and opts what it was started with; sys is
	// nil with --server.
	sys  *system.System
	opts system.Options
}

// Run measures the lifecycles and then the baselines, writing progress to log, and cleans up
// whatever it started before returning.
func Run(ctx context.Context, cfg Config, log io.Writer) (*Result, error) {
	if cfg.N < 1 || cfg.Concurrency < 1 || cfg.Deadlines < 0 {
		return nil, fmt.Errorf("bench: -n and --concurrency must be at least 1 and --deadlines not negative; got %d, %d and %d",
			cfg.N, cfg.Concurrency, cfg.Deadlines)
	}
	if cfg.Rate < 0 || cfg.Rate > 0 && cfg.Duration <= 0 {
		return nil, fmt.Errorf("bench: --rate must not be negative, and with a --rate --duration must be positive; got %g and %s", cfg.Rate, cfg.Duration)
	}
	if cfg.Rate*cfg.Duration.Seconds() > maxOpenLoopRaises {
		return nil, fmt.Errorf("bench: --rate %g for --duration %s would raise more than %d issues", cfg.Rate, cfg.Duration, maxOpenLoopRaises)
	}
	ctx, cancel := context.WithTimeout(ctx, runTimeout+cfg.Duration+OpenLoopGrace)
	defer cancel()
	tgt, stop, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer stop()
	pr, closeProbe, err := newProbe(tgt, cfg)
	if err != nil {
		return nil, err
	}
	defer closeProbe()

	res := &Result{N: cfg.N, Concurrency: cfg.Concurrency, Sync: cfg.Sync, Remote: tgt.sys == nil}
	fmt.Fprintf(log, "bench: %d lifecycles, %d at once, against %s\n", cfg.N, cfg.Concurrency, tgt.addr)
	if err := runLifecycles(ctx, tgt, pr, func(s *session) error { return runClosedLoop(s, cfg, pr, log, res) }); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "bench: %d synchronous raw JetStream publishes, %d at once, then %d asynchronous ones, at most %d awaiting their PubAck\n",
		cfg.N, cfg.Concurrency, max(cfg.N, minAsyncPublishes), AsyncWindow)
	if err := runBaseline(ctx, tgt.nc, cfg, res); err != nil {
		return nil, err
	}
	if from, to := res.ClosedEvents[0], res.ClosedEvents[1]; to > from {
		floor, wall, err := runFloor(ctx, tgt.nc, pr, from, to, res.Completed, cfg, log)
		if err != nil {
			return nil, err
		}
		res.Floor, res.FloorWall = &floor, wall
	}
	if tgt.sys != nil {
		fmt.Fprintf(log, "bench: the stream read raw, then the system stopped and replayed\n")
		settleOrSay(ctx, pr, log)
		if err := runPull(ctx, tgt.nc, res); err != nil {
			return nil, err
		}
		if err := runReplay(ctx, tgt.sys, tgt.opts, res); err != nil {
			return nil, err
		}
	}
	if cfg.Rate > 0 {
		if err := runOpen(ctx, cfg, tgt, pr, log, res); err != nil {
			return nil, err
		}
	}
	if cfg.Server == "" && cfg.Deadlines > 0 {
		fmt.Fprintf(log, "bench: %d issues raised and left to breach their %s report-in deadlines\n", cfg.Deadlines, DeadlineReportIn)
		if err := runDeadlines(ctx, cfg, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// runOpen runs the open loop: with --server on that server, after the closed loop; otherwise on
// a system of its own, started like the first, so that a rate the system cannot keep up with
// leaves its backlog to no other phase.
func runOpen(ctx context.Context, cfg Config, tgt target, pr *probe, log io.Writer, res *Result) error {
	if tgt.sys != nil {
		var err error
		var stop, closeProbe func()
		if tgt, stop, err = startLocal(ctx, cfg); err != nil {
			return err
		}
		defer stop()
		if pr, closeProbe, err = newProbe(tgt, cfg); err != nil {
			return err
		}
		defer closeProbe()
	}
	fmt.Fprintf(log, "bench: open loop against %s: %g raises a second for %s (%d), then up to %s for the last to end\n",
		tgt.addr, cfg.Rate, cfg.Duration, ticks(cfg.Rate, cfg.Duration), OpenLoopGrace)
	return runLifecycles(ctx, tgt, pr, func(s *session) error { return runOpenLoop(s, cfg, pr, log, res) })
}

// runLifecycles starts a session of raisers and officers on the target, points pr at its watch
// deliveries, runs fn on it and closes it.
func runLifecycles(ctx context.Context, tgt target, pr *probe, fn func(*session) error) error {
	s, err := startSession(ctx, tgt)
	if err != nil {
		return err
	}
	defer s.close()
	pr.deliveries = s.deliveries.Load
	return fn(s)
}

// newProbe prepares to read the counters of the target: in-process, the system's own /metrics
// and Redis; with --server, what the config names. Its Redis client is one of its own, made
// without redisx.Connect, so that reading INFO adds nothing to the round trips it counts.
func newProbe(tgt target, cfg Config) (*probe, func(), error) {
	js, err := jetstream.New(tgt.nc)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	pr := &probe{local: tgt.sys != nil, js: js, http: &http.Client{}, deliveries: func() int64 { return 0 },
		metrics: cfg.MetricsURLs, varz: cfg.NATSVarzURL}
	redisURL := cfg.RedisURL
	if tgt.sys != nil {
		pr.metrics = []string{"http://" + tgt.sys.HTTPAddr() + "/metrics"}
		redisURL = tgt.sys.RedisURL()
	}
	if redisURL == "" {
		pr.noRedis = "no --redis URL of the server was given"
		return pr, func() {}, nil
	}
	if redisx.IsClusterURL(redisURL) {
		pr.noRedis = "the server's Redis is a cluster, and the INFO of one node is not all of it"
		return pr, func() {}, nil
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: --redis: %w", err)
	}
	opts.PoolSize = 1
	pr.redis = redis.NewClient(opts)
	return pr, func() { pr.redis.Close() }, nil
}

// connect returns the system to measure and how to let go of it: a system started in this
// process on a temporary folder (removed by stop), or the server the config names.
func connect(ctx context.Context, cfg Config) (target, func(), error) {
	if cfg.Server != "" {
		return connectExternal(cfg)
	}
	if cfg.KeyFile != "" || cfg.NATSURL != "" || len(cfg.MetricsURLs) > 0 || cfg.RedisURL != "" || cfg.NATSVarzURL != "" {
		return target{}, nil, errors.New("bench: --key, --nats, --metrics, --redis and --nats-varz go with --server")
	}
	return startLocal(ctx, cfg)
}

// startLocal starts a system in this process on a temporary folder, removed by the stop it
// returns.
func startLocal(ctx context.Context, cfg Config) (target, func(), error) {
	dir, err := os.MkdirTemp("", "whistle-bench-")
	if err != nil {
		return target{}, nil, fmt.Errorf("bench: %w", err)
	}
	opts := system.Options{
		DataDir:  dir,
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Clock:    clock.Real(), // the sample SLAs are 30 minutes or more: nothing breaches during a run
		Sync:     cfg.Sync,
		Logger:   slog.New(slog.DiscardHandler),
	}
	sys, err := system.Start(ctx, opts)
	if err != nil {
		os.RemoveAll(dir)
		return target{}, nil, fmt.Errorf("bench: start the system: %w", err)
	}
	stop := func() {
		// The run's ctx may be over; stopping still gets its own time. The replay phase may
		// have stopped the system already, which makes this Stop a no-op.
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sys.Stop(sctx)
		os.RemoveAll(dir)
	}
	return target{addr: sys.GRPCAddr(), auth: sys.Authority(), nc: sys.Deps().NATS, sys: sys, opts: opts}, stop, nil
}

// connectExternal reaches a running Whistle given by address, signing key and NATS URL.
func connectExternal(cfg Config) (target, func(), error) {
	if cfg.KeyFile == "" || cfg.NATSURL == "" {
		return target{}, nil, errors.New("bench: --server needs --key (to mint tokens) and --nats (for the baseline)")
	}
	// A key made up for a mistyped path would fail every call; LoadKey never makes one.
	key, err := authx.LoadKey(cfg.KeyFile)
	if err != nil {
		return target{}, nil, fmt.Errorf("bench: --key: %w", err)
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("whistle-bench"))
	if err != nil {
		return target{}, nil, fmt.Errorf("bench: --nats: %w", err)
	}
	return target{addr: cfg.Server, auth: authx.NewAuthority(key), nc: nc}, nc.Close, nil
}

// Print writes the result as markdown: a table of rates, latencies and ratios, then a table of
// what each completed lifecycle cost, with a note under it for every figure not measured.
func (r *Result) Print(w io.Writer) error {
	life := float64(r.Completed) / r.Wall.Seconds()
	pub := float64(len(r.Publish)) / r.PublishWall.Seconds()
	async := float64(r.AsyncPublishes) / r.AsyncPublishWall.Seconds()
	inbox50, pub50 := Percentile(r.Inbox, 50), Percentile(r.Publish, 50)
	rows := [][]string{
		{"lifecycles (raise → dispatch → ack → resolve → verify)", fmt.Sprintf("%d of %d completed", r.Completed, r.N)},
		{"concurrency", fmt.Sprint(r.Concurrency)},
		{"JetStream sync", r.Sync.String()},
		{"lifecycles/s", fmt.Sprintf("%.1f", life)},
		{"raise → inbox p50", ms(inbox50)},
		{"raise → inbox p99", ms(Percentile(r.Inbox, 99))},
		{"raise → inbox max", ms(Percentile(r.Inbox, 100))},
		{"raw JetStream publish ops/s", fmt.Sprintf("%.1f", pub)},
		{"raw JetStream publish p50", ms(pub50)},
		{"raw JetStream publish p99", ms(Percentile(r.Publish, 99))},
		{fmt.Sprintf("async JetStream publish ops/s (%d publishes, at most %d awaiting PubAck)", r.AsyncPublishes, AsyncWindow), fmt.Sprintf("%.1f", async)},
		{"lifecycles/s ÷ publish ops/s", fmt.Sprintf("%.4f", life/pub)},
		{"lifecycles/s ÷ async publish ops/s", fmt.Sprintf("%.4f", life/async)},
		{"inbox p50 ÷ publish p50", fmt.Sprintf("%.1f", float64(inbox50)/float64(pub50))},
	}
	if r.Floor != nil {
		floor := float64(r.Completed) / r.FloorWall.Seconds()
		rows = append(rows,
			[]string{"JetStream floor: lifecycles/s (the closed loop's events appended and consumed, no service)", fmt.Sprintf("%.1f", floor)},
			[]string{"lifecycles/s ÷ JetStream floor lifecycles/s", fmt.Sprintf("%.4f", life/floor)})
		if sys, fl := r.cpuPerLifecycle(r.Closed), r.cpuPerLifecycle(*r.Floor); sys > 0 && fl > 0 {
			rows = append(rows, []string{"CPU per lifecycle ÷ JetStream floor's (every process measured)", fmt.Sprintf("%.1f", sys/fl)})
		}
	}
	if o := r.Open; o != nil {
		rate := float64(o.Completed) / o.Wall.Seconds()
		open50 := openPercentile(o, 50)
		rows = append(rows,
			[]string{fmt.Sprintf("open loop: raises scheduled (%g/s for %s)", o.Rate, o.Duration), fmt.Sprint(o.Scheduled)},
			[]string{"open loop: raises completed", fmt.Sprint(o.Raised)},
			[]string{"open loop: lifecycles completed", fmt.Sprint(o.Completed)},
			[]string{fmt.Sprintf("open loop: dropped (not resolved within %s of the last scheduled raise)", o.Grace),
				fmt.Sprintf("%d (%d raises failed, %d never in the inbox, %d not resolved)", o.Scheduled-o.Completed, o.RaiseFailed, o.NotInInbox, o.NotResolved)},
			[]string{"open loop: lifecycles completed/s (first scheduled raise → last resolve)", fmt.Sprintf("%.1f", rate)},
			[]string{"open loop: raise (scheduled) → inbox p50", open50.String()},
			[]string{"open loop: raise (scheduled) → inbox p99", openPercentile(o, 99).String()},
			[]string{"open loop: raise (scheduled) → inbox max", openPercentile(o, 100).String()},
			[]string{"open loop: raise sent after its scheduled time, max", ms(Percentile(o.Late, 100))},
			[]string{"open loop: lifecycles/s ÷ async publish ops/s", fmt.Sprintf("%.4f", rate/async)},
			[]string{"open loop: inbox p50 ÷ publish p50", open50.ratio(pub50)})
	}
	if r.Pulled > 0 {
		pull := float64(r.Pulled) / r.PullWall.Seconds()
		replay := r.Replay.Rate()
		var quarantined int64
		for _, n := range r.Replay.Quarantined {
			quarantined += n
		}
		rows = append(rows,
			[]string{"events in the stream", fmt.Sprint(r.Replay.Events)},
			[]string{"replay (4 services rebuild Redis) events/s", fmt.Sprintf("%.1f", replay)},
			[]string{"raw pull + decode events/s (1 ordered consumer, no acks)", fmt.Sprintf("%.1f", pull)},
			[]string{"replay events/s ÷ raw pull events/s", fmt.Sprintf("%.4f", replay/pull)},
			[]string{"CPU per event, replay (whistle process, its start included)", us(r.ReplayCPU / time.Duration(max(r.Replay.Events, 1)))},
			[]string{"CPU per event, raw pull", us(r.PullCPU / time.Duration(max(r.Pulled, 1)))},
			[]string{"issues quarantined by the replay", fmt.Sprint(quarantined)})
	}
	if len(r.Breach) > 0 {
		breach50 := Percentile(r.Breach, 50)
		rows = append(rows,
			[]string{"report-in deadlines passed (limit " + r.DeadlineReportIn.String() + ")", fmt.Sprint(len(r.Breach))},
			[]string{"deadlines spread over (first → last)", ms(r.DeadlineSpread)},
			[]string{"breach recorded after deadline p50 (stream clock)", ms(breach50)},
			[]string{"breach recorded after deadline p99 (stream clock)", ms(Percentile(r.Breach, 99))},
			[]string{"breach recorded after deadline max (stream clock)", ms(Percentile(r.Breach, 100))},
			[]string{"breaches recorded/s (first deadline → last breach)", fmt.Sprintf("%.1f", float64(len(r.Breach))/r.BreachWall.Seconds())},
			[]string{"breach p50 ÷ publish p50", fmt.Sprintf("%.1f", float64(breach50)/float64(pub50))})
	}
	rows = append(rows, [][]string{
		{"Go", runtime.Version()},
		{"GOMAXPROCS", fmt.Sprint(runtime.GOMAXPROCS(0))},
	}...)
	if err := printTable(w, []string{"measure", "value"}, rows); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	if err := r.printStages(w); err != nil {
		return err
	}
	return r.printCosts(w)
}

// cpuPerLifecycle is c's CPU seconds per lifecycle over every process measured (this one, the
// server's with --server, redis-server's), or 0 when one of them was not measured.
func (r *Result) cpuPerLifecycle(c Cost) float64 {
	parts := []Delta{c.ProcessCPU, c.RedisCPU}
	if r.Remote {
		parts = append(parts, c.ServerCPU)
	}
	var sum float64
	for _, d := range parts {
		per, ok := c.Per(d)
		if !ok {
			return 0
		}
		sum += per
	}
	return sum
}

// printCosts writes the table of what each completed lifecycle cost, a column per run, and
// under it why any figure was not measured.
func (r *Result) printCosts(w io.Writer) error {
	header := []string{"cost per completed lifecycle", "closed loop"}
	runs := []Cost{r.Closed}
	if r.Open != nil {
		header = append(header, "open loop")
		runs = append(runs, r.Open.Cost)
	}
	if r.Floor != nil {
		header = append(header, "JetStream floor (the closed loop's events, no service)")
		runs = append(runs, *r.Floor)
	}
	type line struct {
		name  string
		delta func(Cost) Delta
		unit  func(float64) string
	}
	cpu := func(seconds float64) string { return ms(time.Duration(seconds * float64(time.Second))) }
	count := func(n float64) string { return fmt.Sprintf("%.1f", n) }
	lines := []line{
		{"CPU, whistle process (system and simulated callers)", func(c Cost) Delta { return c.ProcessCPU }, cpu},
		{"CPU, redis-server (INFO cpu)", func(c Cost) Delta { return c.RedisCPU }, cpu},
		{"Redis commands (INFO commandstats)", func(c Cost) Delta { return c.RedisCommands }, count},
		{"Redis round trips (whistle.redis.round_trips)", func(c Cost) Delta { return c.RedisRoundTrips }, count},
		{"appends decided again on a newer state (whistle.decide.conflicts)", func(c Cost) Delta { return c.Conflicts }, count},
		{"NATS messages in (server in_msgs)", func(c Cost) Delta { return c.NATSIn }, count},
		{"NATS messages out (server out_msgs)", func(c Cost) Delta { return c.NATSOut }, count},
		{"watch deliveries (the bench's WatchInbox streams)", func(c Cost) Delta { return c.WatchDeliveries }, count},
		{"events appended to the stream", func(c Cost) Delta { return c.Events }, count},
	}
	if r.Remote {
		lines[0].name = "CPU, bench process (simulated callers)"
		lines = append(lines[:1], append([]line{
			{"CPU, server processes (process_cpu_seconds_total of --metrics)", func(c Cost) Delta { return c.ServerCPU }, cpu},
		}, lines[1:]...)...)
	}
	var rows [][]string
	var notes []string
	for _, l := range lines {
		row := []string{l.name}
		for _, c := range runs {
			per, ok := c.Per(l.delta(c))
			if !ok {
				row = append(row, "not measured")
				why := l.delta(c).Missing
				if why == "" {
					why = "no lifecycle completed"
				}
				if note := fmt.Sprintf("- %s: not measured: %s", l.name, why); !slices.Contains(notes, note) {
					notes = append(notes, note)
				}
				continue
			}
			row = append(row, l.unit(per))
		}
		rows = append(rows, row)
	}
	if err := printTable(w, header, rows); err != nil {
		return err
	}
	if len(notes) > 0 {
		if _, err := fmt.Fprintf(w, "\n%s\n", strings.Join(notes, "\n")); err != nil {
			return err
		}
	}
	return nil
}

// printTable writes a markdown table.
func printTable(w io.Writer, header []string, rows [][]string) error {
	if _, err := fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header))); err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | ")); err != nil {
			return err
		}
	}
	return nil
}

// openLatency is a percentile of the open loop's raise → inbox times in which every raise that
// never showed in the inbox counts as slower than any that did: dropped says the percentile
// falls on one of those, whose time is unknown.
type openLatency struct {
	d       time.Duration
	dropped bool
}

// openPercentile is the p-th percentile of o's raise → inbox times over every scheduled raise,
// the dropped ones included as the slowest, so that drops cannot flatter the figure.
func openPercentile(o *OpenLoop, p float64) openLatency {
	all := slices.Clone(o.Inbox)
	const never = time.Duration(math.MaxInt64)
	for range o.Scheduled - len(o.Inbox) {
		all = append(all, never)
	}
	if d := Percentile(all, p); d != never {
		return openLatency{d: d}
	}
	return openLatency{dropped: true}
}

// String is the latency in milliseconds, or says it fell on a dropped raise.
func (l openLatency) String() string {
	if l.dropped {
		return "never (dropped)"
	}
	return ms(l.d)
}

// ratio is the latency as a multiple of base, or says it fell on a dropped raise.
func (l openLatency) ratio(base time.Duration) string {
	if l.dropped {
		return "never (dropped)"
	}
	return fmt.Sprintf("%.1f", float64(l.d)/float64(base))
}

// us is a duration in microseconds, for costs per event.
func us(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

// ms is a duration in milliseconds with enough digits for sub-millisecond figures.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
