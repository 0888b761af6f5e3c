// Package bench measures Whistle end to end: it drives complete issue lifecycles (raise,
// dispatch, acknowledge, resolve) through the public gRPC API with simulated duty officers,
// and sets the figures beside a raw JetStream publish on the same NATS, so that the cost of
// the whole pipeline reads as a multiple of the one write it cannot avoid.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
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
	// CPU is the processor time this process spent over Wall (user and system): with a
	// system started in this process, NATS, the services and the simulated callers, but
	// not the redis-server child. Zero where the platform cannot tell.
	CPU time.Duration
	// Sync is the JetStream flush setting of the system measured.
	Sync natsx.Sync
	// Inbox holds, per lifecycle, the time from the RaiseIssue call to the lead
	// department's assignment appearing on its WatchInbox stream.
	Inbox []time.Duration
	// PublishWall is how long the N raw publishes took.
	PublishWall time.Duration
	// Publish holds each raw publish's round trip.
	Publish []time.Duration
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
		Short: "Measure end-to-end issue lifecycles against a raw JetStream publish",
		Long: "bench starts a Whistle in this process (or uses --server), drives N complete lifecycles " +
			"(raise, dispatch, acknowledge, resolve) with simulated duty officers, measures N raw " +
			"JetStream publishes on the same NATS, then (on a system it started) reads the stream raw, " +
			"stops the system and replays it, and, on a second system whose deadline category reports " +
			"in within " + DeadlineReportIn.String() + ", measures how late breaches are recorded; it " +
			"prints every figure as a markdown table.",
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
	cmd.Flags().IntVarP(&cfg.N, "n", "n", 500, "number of lifecycles (and of raw publishes)")
	cmd.Flags().IntVar(&cfg.Concurrency, "concurrency", 16, "lifecycles (and publishes) in flight at once")
	cmd.Flags().StringVar(&cfg.Server, "server", "", "gRPC address of a running Whistle; default: start one in this process")
	cmd.Flags().StringVar(&cfg.KeyFile, "key", "", "with --server: that server's token signing key file")
	cmd.Flags().StringVar(&cfg.NATSURL, "nats", "", "with --server: that server's NATS URL, for the baseline")
	cmd.Flags().IntVar(&cfg.Deadlines, "deadlines", 200, "issues raised and left to breach their report-in deadlines in the deadline phase; 0 skips it")
	cmd.Flags().StringVar(&sync, "sync", "default", "JetStream flush of the systems bench starts, as whistle up --sync: always, a duration, or default")
	return cmd
}

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

// Run measures the lifecycles and then the baseline, writing progress to log, and cleans up
// whatever it started before returning.
func Run(ctx context.Context, cfg Config, log io.Writer) (*Result, error) {
	if cfg.N < 1 || cfg.Concurrency < 1 || cfg.Deadlines < 0 {
		return nil, fmt.Errorf("bench: -n and --concurrency must be at least 1 and --deadlines not negative; got %d, %d and %d",
			cfg.N, cfg.Concurrency, cfg.Deadlines)
	}
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	tgt, stop, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer stop()

	res := &Result{N: cfg.N, Concurrency: cfg.Concurrency, Sync: cfg.Sync}
	fmt.Fprintf(log, "bench: %d lifecycles, %d at once, against %s\n", cfg.N, cfg.Concurrency, tgt.addr)
	if err := runLifecycles(ctx, tgt, cfg, res); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "bench: %d raw JetStream publishes, %d at once\n", cfg.N, cfg.Concurrency)
	if err := runBaseline(ctx, tgt.nc, cfg, res); err != nil {
		return nil, err
	}
	if tgt.sys != nil {
		fmt.Fprintf(log, "bench: the stream read raw, then the system stopped and replayed\n")
		if err := runPull(ctx, tgt.nc, res); err != nil {
			return nil, err
		}
		if err := runReplay(ctx, tgt.sys, tgt.opts, res); err != nil {
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

// connect returns the system to measure and how to let go of it: a system started in this
// process on a temporary folder (removed by stop), or the server the config names.
func connect(ctx context.Context, cfg Config) (target, func(), error) {
	if cfg.Server != "" {
		return connectExternal(cfg)
	}
	if cfg.KeyFile != "" || cfg.NATSURL != "" {
		return target{}, nil, errors.New("bench: --key and --nats go with --server")
	}
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

// Print writes the result as a markdown table.
func (r *Result) Print(w io.Writer) error {
	life := float64(r.Completed) / r.Wall.Seconds()
	pub := float64(len(r.Publish)) / r.PublishWall.Seconds()
	inbox50, pub50 := Percentile(r.Inbox, 50), Percentile(r.Publish, 50)
	rows := [][2]string{
		{"lifecycles (raise → dispatch → ack → resolve)", fmt.Sprintf("%d of %d completed", r.Completed, r.N)},
		{"concurrency", fmt.Sprint(r.Concurrency)},
		{"JetStream sync", r.Sync.String()},
		{"lifecycles/s", fmt.Sprintf("%.1f", life)},
		{"CPU per lifecycle (whistle process)", ms(r.CPU / time.Duration(max(r.Completed, 1)))},
		{"raise → inbox p50", ms(inbox50)},
		{"raise → inbox p99", ms(Percentile(r.Inbox, 99))},
		{"raise → inbox max", ms(Percentile(r.Inbox, 100))},
		{"raw JetStream publish ops/s", fmt.Sprintf("%.1f", pub)},
		{"raw JetStream publish p50", ms(pub50)},
		{"raw JetStream publish p99", ms(Percentile(r.Publish, 99))},
		{"lifecycles/s ÷ publish ops/s", fmt.Sprintf("%.4f", life/pub)},
		{"inbox p50 ÷ publish p50", fmt.Sprintf("%.1f", float64(inbox50)/float64(pub50))},
	}
	if r.Pulled > 0 {
		pull := float64(r.Pulled) / r.PullWall.Seconds()
		replay := r.Replay.Rate()
		var quarantined int64
		for _, n := range r.Replay.Quarantined {
			quarantined += n
		}
		rows = append(rows,
			[2]string{"events in the stream", fmt.Sprint(r.Replay.Events)},
			[2]string{"replay (4 services rebuild Redis) events/s", fmt.Sprintf("%.1f", replay)},
			[2]string{"raw pull + decode events/s (1 ordered consumer, no acks)", fmt.Sprintf("%.1f", pull)},
			[2]string{"replay events/s ÷ raw pull events/s", fmt.Sprintf("%.4f", replay/pull)},
			[2]string{"CPU per event, replay (whistle process, its start included)", us(r.ReplayCPU / time.Duration(max(r.Replay.Events, 1)))},
			[2]string{"CPU per event, raw pull", us(r.PullCPU / time.Duration(max(r.Pulled, 1)))},
			[2]string{"issues quarantined by the replay", fmt.Sprint(quarantined)})
	}
	if len(r.Breach) > 0 {
		breach50 := Percentile(r.Breach, 50)
		rows = append(rows,
			[2]string{"report-in deadlines passed (limit " + r.DeadlineReportIn.String() + ")", fmt.Sprint(len(r.Breach))},
			[2]string{"deadlines spread over (first → last)", ms(r.DeadlineSpread)},
			[2]string{"breach recorded after deadline p50 (stream clock)", ms(breach50)},
			[2]string{"breach recorded after deadline p99 (stream clock)", ms(Percentile(r.Breach, 99))},
			[2]string{"breach recorded after deadline max (stream clock)", ms(Percentile(r.Breach, 100))},
			[2]string{"breaches recorded/s (first deadline → last breach)", fmt.Sprintf("%.1f", float64(len(r.Breach))/r.BreachWall.Seconds())},
			[2]string{"breach p50 ÷ publish p50", fmt.Sprintf("%.1f", float64(breach50)/float64(pub50))})
	}
	rows = append(rows, [][2]string{
		{"Go", runtime.Version()},
		{"GOMAXPROCS", fmt.Sprint(runtime.GOMAXPROCS(0))},
	}...)
	if _, err := fmt.Fprintln(w, "| measure | value |\n|---|---|"); err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "| %s | %s |\n", r[0], r[1]); err != nil {
			return err
		}
	}
	return nil
}

// us is a duration in microseconds, for costs per event.
func us(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

// ms is a duration in milliseconds with enough digits for sub-millisecond figures.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
