package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/routing"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// The timer bench's issues are raised in this grid and category, at normal urgency, and routed
// to the unit the sample city's rules pick for them.
const (
	timersGrid     = "xinhua-taoyuan-01"
	timersCategory = "blocked-drain"
)

// farOff is how far ahead of the start the deadlines that must not fall due during the run lie:
// every resolve deadline, and the report-in deadlines of the issues outside the storm and the
// steady phase.
const farOff = 24 * time.Hour

// timersStall is how long the open deadlines may stay the same while the bench waits for them to
// be armed or fired before it gives up.
const timersStall = time.Minute

// timersShardKey is the escalation projection's shard of the open deadlines of partition p, as
// docs/architecture.md names it (Keys and Redis Cluster): a sorted set with one entry per open
// timer. The bench counts and weighs the shards from outside the service, as an operator would.
func timersShardKey(p int) string { return "escalation:timers:" + eventlog.PartitionTag(p) }

// TimersConfig says how many deadlines the timer bench arms and how they fall due.
type TimersConfig struct {
	// Deadlines is how many open deadlines to arm before the storm. Each issue is dispatched to
	// one unit with a report-in and a resolve deadline, two timers, so Deadlines/2 issues
	// (rounded up) are raised and routed.
	Deadlines int
	// Storm is how many of those issues have their report-in deadline at one instant, as after
	// an outage; the rest lie farOff ahead.
	Storm int
	// Rate and Duration shape the steady phase, armed after the storm: report-in deadlines that
	// fall due Rate a second, evenly, for Duration, while the storm's survivors stay open.
	Rate     float64
	Duration time.Duration
	// Concurrency is how many issues are being appended at once while arming.
	Concurrency int
	// CPUProfile, when set, is the file the process's CPU profile of the storm is written to,
	// from just before its instant until its last timer is gone.
	CPUProfile string
	// AllocProfile, when set, is the file the process's allocation profile is written to just
	// after the storm, and AllocProfile+".before" the one before its wait for the instant (the
	// process is idle meanwhile): go tool pprof -base takes the first from the second, leaving
	// what the storm allocated.
	AllocProfile string
	// Progress, when set, is told how the arming and the storm go, a line every few seconds.
	Progress io.Writer
}

// TimersResult is what one run of the timer bench measured.
type TimersResult struct {
	Config TimersConfig
	// Issues is how many issues were armed before the storm, and Armed the open deadlines
	// counted in the timers shards once they all were.
	Issues int
	Armed  int64
	// Appended is the time from the first append to the last PubAck of the arming; Armed is
	// reached ArmWall after the first append.
	Appended, ArmWall time.Duration
	// TimersBytes is the sum of MEMORY USAGE of every timers shard with Armed deadlines open.
	TimersBytes int64
	// UsedMemory is how much redis-server's used_memory grew from before the first append to
	// all armed, and ScoreBytes the MEMORY USAGE of the scorecard keys (escalation:score:*) then.
	UsedMemory, ScoreBytes int64
	// StormAt is the storm's deadline, on the stream's clock.
	StormAt time.Time
	// Storm and Steady are the two firings.
	Storm, Steady Firing
	// StormFloor is the floor beneath the storm: its breaches appended again and consumed by
	// JetStream alone, measured right after it.
	StormFloor Floor
	// AOFRewrite is one rewrite of redis-server's append-only file, measured right after the
	// storm, over which automatic rewrites were held off (see AOFRewrite).
	AOFRewrite AOFRewrite
	// Reconciliation is one pass of the timer reconciliation over every issue, run once the
	// firings are done.
	Reconciliation Reconciliation
	// LoadBefore and LoadAfter are the machine's load averages (1, 5 and 15 minutes) at the
	// start and at the end; empty where the system does not say.
	LoadBefore, LoadAfter string
}

// Reconciliation is what one pass of the timer reconciliation cost: the time it took, this
// process's CPU and redis-server's over it (RedisMissing says why that one was not read), and the
// timers it put back, which should be none.
type Reconciliation struct {
	Wall, CPU, RedisCPU time.Duration
	RedisMissing        string
	Repaired            int
}

// Floor is what events cost JetStream alone, with no service doing anything for them: appended
// again to a stream of their own as the escalation service appends its breaches, as many at once
// as it fires, and consumed as the escalation service alone consumes them (measureFloor).
type Floor struct {
	// Events is how many events were appended and consumed.
	Events int
	// Wall is the time from the first append until every event was consumed.
	Wall time.Duration
	// CPU is this process's CPU over the floor (the embedded NATS, the bench's appends and
	// consumers), until the consumers' acknowledgements were taken; RedisCPU is redis-server's,
	// which has nothing to do for the floor (the idle service's timer loop aside), and
	// RedisMissing says why it was not read.
	CPU, RedisCPU time.Duration
	RedisMissing  string
}

// Rate is the events appended and consumed per second; 0 when none were.
func (f Floor) Rate() float64 {
	if f.Events == 0 || f.Wall <= 0 {
		return 0
	}
	return float64(f.Events) / f.Wall.Seconds()
}

// Firing is what one phase's deadlines did when they fell due.
type Firing struct {
	// Due are the issues whose report-in deadlines fell due, one each.
	Due []string
	// Fired counts the breach events the stream stored for each of Due, by issue; Breaches is
	// their sum, Once how many of Due breached at all and Twice how many more than once. Stray
	// counts breach events of any other deadline, which must have none.
	Fired                        map[string]int
	Breaches, Once, Twice, Stray int
	// Lateness is, per deadline of Due that breached, the time the stream stored its first
	// breach less the deadline.
	Lateness []time.Duration
	// Wall is the time from the first breach stored to the last, on the stream's clock, and
	// Drain the time from the first deadline to the last breach stored.
	Wall, Drain time.Duration
	// CPU is this process's CPU over the firing (escalation, the embedded NATS and the bench's
	// polling), RedisCPU redis-server's; RedisMissing says why that one was not read.
	CPU, RedisCPU time.Duration
	RedisMissing  string
	// Heap is what this process's Go heap did over the firing.
	Heap heapWork
	// AOFBytes is how much redis-server's append-only file grew over the firing, and
	// AOFRewrites how many rewrites of it ran meanwhile; AOFMissing says why they were not read.
	AOFBytes, AOFRewrites int64
	AOFMissing            string
}

// Rate is the deadlines breached per second from the first breach stored to the last; 0 under
// two.
func (f Firing) Rate() float64 {
	if f.Once < 2 || f.Wall <= 0 {
		return 0
	}
	return float64(f.Once-1) / f.Wall.Seconds()
}

// check says what is wrong with the firing's counts: every deadline due must breach exactly once,
// and no other.
func (f Firing) check(phase string) error {
	if f.Once != len(f.Due) || f.Twice != 0 || f.Stray != 0 {
		return fmt.Errorf("bench timers: %s: of %d deadlines due %d breached, %d more than once, and %d other deadlines breached",
			phase, len(f.Due), f.Once, f.Twice, f.Stray)
	}
	return nil
}

// timersCommand returns `whistle bench timers`.
func timersCommand() *cobra.Command {
	cfg := TimersConfig{}
	cmd := &cobra.Command{
		Use:   "timers",
		Short: "Measure the escalation service's deadline timers at scale: memory, arming, a storm and a steady rate",
		Long: "bench timers starts the escalation service alone in this process, on an embedded NATS and a " +
			"redis-server child of its own, and appends to the stream, as intake and routing would, a raise " +
			"and a route for -n/2 issues, each summoning one unit with a report-in and a resolve deadline. " +
			"It reports the arming rate (open deadlines the projection has folded into its timers per second, " +
			"from the first append until all are armed), the timers shards' Redis memory per open deadline " +
			"and redis-server's growth per issue. --storm of the issues have their report-in deadline at one " +
			"instant, as after an outage: it reports how fast their breaches were stored and how late, at " +
			"p50, p99 and max, judged on the stream's clock, and the CPU per breach. Right after, it measures " +
			"the floor beneath the storm: its breaches, as the stream stored them, appended again to a stream " +
			"of their own, as many at once as escalation fires them, and consumed as escalation consumes, by " +
			"JetStream alone; it reports the floor's breaches/s and CPU per breach, and the storm's as ratios " +
			"of them. Then it arms report-in deadlines that fall due --rate a second for --duration, with the " +
			"rest still open, and reports their lateness. " +
			"--cpuprofile writes a CPU profile of the storm, --allocprofile what it allocated.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			cfg.Progress = cmd.ErrOrStderr()
			res, err := RunTimers(cmd.Context(), cfg)
			if res != nil {
				err = errors.Join(res.Print(cmd.OutOrStdout()), err)
			}
			return err
		},
	}
	cmd.Flags().IntVarP(&cfg.Deadlines, "n", "n", 1_000_000, "open deadlines to arm (two per issue: report-in and resolve)")
	cmd.Flags().IntVar(&cfg.Storm, "storm", 100_000, "issues whose report-in deadlines fall due at one instant")
	cmd.Flags().Float64Var(&cfg.Rate, "rate", 200, "steady phase: report-in deadlines falling due per second; 0 skips the phase")
	cmd.Flags().DurationVar(&cfg.Duration, "duration", 30*time.Second, "steady phase: how long deadlines fall due at --rate")
	cmd.Flags().IntVar(&cfg.Concurrency, "concurrency", 256, "issues appended at once while arming")
	cmd.Flags().StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the storm to this file (go tool pprof reads it)")
	cmd.Flags().StringVar(&cfg.AllocProfile, "allocprofile", "", "write the allocation profiles from before the storm (FILE.before) and just after it (FILE); go tool pprof -sample_index=alloc_space -base FILE.before FILE shows what the storm allocated")
	return cmd
}

// RunTimers starts the escalation service alone and measures its timers as cfg says. When every
// phase ran but a deadline due breached other than exactly once, or another breached, it returns
// the figures with an error that says so.
func RunTimers(ctx context.Context, cfg TimersConfig) (*TimersResult, error) {
	issues := (cfg.Deadlines + 1) / 2
	switch {
	case cfg.Deadlines < 2 || cfg.Concurrency < 1:
		return nil, fmt.Errorf("bench timers: -n must be at least 2 and --concurrency at least 1; got %d and %d", cfg.Deadlines, cfg.Concurrency)
	case cfg.Storm < 1 || cfg.Storm > issues:
		return nil, fmt.Errorf("bench timers: --storm must be 1 to the %d issues of -n %d; got %d", issues, cfg.Deadlines, cfg.Storm)
	case cfg.Rate < 0 || (cfg.Rate > 0 && cfg.Duration <= 0):
		return nil, fmt.Errorf("bench timers: --rate must not be negative, and --duration positive with a rate")
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	res := &TimersResult{Config: cfg, Issues: issues, LoadBefore: loadAverage()}

	dir, err := os.MkdirTemp("", "whistle-bench-timers-")
	if err != nil {
		return nil, fmt.Errorf("bench timers: %w", err)
	}
	defer os.RemoveAll(dir)
	sys, err := system.Start(ctx, system.Options{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Clock: clock.Real(), Services: []string{"escalation"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("bench timers: start the escalation service: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = sys.Stop(sctx)
	}()
	b, err := newTimersBench(ctx, sys, dir, cfg)
	if err != nil {
		return nil, err
	}
	defer b.close()

	if err := b.arm(ctx, res); err != nil {
		return nil, err
	}
	if err := b.storm(ctx, res); err != nil {
		return nil, err
	}
	if err := b.stormFloor(ctx, res); err != nil {
		return nil, err
	}
	res.AOFRewrite = measureAOFRewrite(ctx, b.rdb, b.redisCPU, b.aofPercent)
	if err := restoreAOFRewrites(ctx, b.rdb, b.aofPercent); err != nil {
		return nil, fmt.Errorf("bench timers: %w", err)
	}
	if cfg.Rate > 0 {
		if err := b.steady(ctx, res); err != nil {
			return nil, err
		}
	}
	if err := b.reconcile(ctx, sys, res); err != nil {
		return nil, err
	}
	res.LoadAfter = loadAverage()
	// The figures stand whatever the counts, so they are returned with what is wrong with them.
	err = res.Storm.check("storm")
	if cfg.Rate > 0 {
		err = errors.Join(err, res.Steady.check("steady"))
	}
	if n := res.Reconciliation.Repaired; n > 0 {
		err = errors.Join(err, fmt.Errorf("bench timers: the reconciliation put back %d timers; it should find none", n))
	}
	return res, err
}

// reconcile runs one pass of the escalation service's timer reconciliation over every issue, as
// its timer loop does every ReconcileEvery, and measures it.
func (b *timersBench) reconcile(ctx context.Context, sys *system.System, res *TimersResult) error {
	var esc *escalation.Service
	for _, svc := range sys.Services() {
		if e, ok := svc.(*escalation.Service); ok {
			esc = e
		}
	}
	if esc == nil {
		return errors.New("bench timers: the system runs no escalation service")
	}
	fmt.Fprintf(b.cfg.Progress, "bench timers: reconciling the timers of %d issues\n", res.Issues)
	cpu, start := processCPU(), time.Now()
	redisBefore, redisErr := b.redisCPU(ctx)
	repaired, err := esc.Reconcile(ctx)
	if err != nil {
		return fmt.Errorf("bench timers: reconcile: %w", err)
	}
	r := &res.Reconciliation
	r.Wall, r.CPU, r.Repaired = time.Since(start), processCPU()-cpu, repaired
	redisAfter, redisAfterErr := b.redisCPU(ctx)
	r.RedisCPU, r.RedisMissing = redisSpent(redisBefore, redisErr, redisAfter, redisAfterErr)
	return nil
}

// timersBench holds what the phases share: the logs to append as intake and as routing, the
// system's own connections to read the stream and Redis, and what each issue is raised and
// routed with.
type timersBench struct {
	cfg             TimersConfig
	intake, routing *eventlog.Log
	conns           []*nats.Conn
	js              jetstream.JetStream
	stream          jetstream.Stream
	rdb             redis.UniversalClient
	raised          *whistlev1.IssueRaised
	dispatch        *whistlev1.Dispatch
	// aofPercent is redis-server's auto-aof-rewrite-percentage, restored after the storm.
	aofPercent int64
	// run makes the case numbers of this run, and next is the index of the next key.
	run  string
	next int
	seen map[string]bool
	// stormIDs are the issues of the storm, and stormBreaches its breaches as the stream stored
	// them, until the storm's floor appends them again.
	stormIDs      []string
	stormBreaches []floorEvent
	// start is when the run began; the deadlines that must not fall due lie farOff after it.
	start time.Time
}

// newTimersBench connects to sys's NATS as intake and as routing, whose users alone may append
// raises and routes, and settles what the issues say: the sample city's grid and category, and
// the lead unit its rules route them to (alone, without the units that assist), with the
// category's normal policy less its reminders and escalation chain, so that each issue holds
// exactly its two deadlines' timers.
func newTimersBench(ctx context.Context, sys *system.System, dir string, cfg TimersConfig) (_ *timersBench, err error) {
	b := &timersBench{cfg: cfg, rdb: sys.Deps().Redis, run: strconv.FormatInt(time.Now().UnixNano(), 36),
		seen: map[string]bool{}, start: time.Now()}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	users, err := system.LoadNATSUsers(dir)
	if err != nil {
		return nil, fmt.Errorf("bench timers: %w", err)
	}
	url := sys.Deps().NATS.ConnectedUrl()
	open := func(name string) (*eventlog.Log, error) {
		for _, u := range users {
			if u.Name != name {
				continue
			}
			nc, err := natsx.Connect(ctx, url, "bench-timers-"+name, nats.UserInfo(u.Name, u.Password))
			if err != nil {
				return nil, fmt.Errorf("bench timers: connect as %s: %w", name, err)
			}
			b.conns = append(b.conns, nc)
			l, err := eventlog.Open(ctx, nc, eventlog.Config{})
			if err != nil {
				return nil, fmt.Errorf("bench timers: open the log as %s: %w", name, err)
			}
			return l, nil
		}
		return nil, fmt.Errorf("bench timers: the NATS users have no %s", name)
	}
	if b.intake, err = open("intake"); err != nil {
		return nil, err
	}
	if b.routing, err = open("routing"); err != nil {
		return nil, err
	}
	if b.js, err = jetstream.New(sys.Deps().NATS); err != nil {
		return nil, fmt.Errorf("bench timers: %w", err)
	}
	if b.stream, err = b.js.Stream(ctx, eventlog.StreamName); err != nil {
		return nil, fmt.Errorf("bench timers: %w", err)
	}

	cat := sys.Deps().Catalog
	grid, community, street, err := cat.Grid(timersGrid)
	if err != nil {
		return nil, fmt.Errorf("bench timers: %w", err)
	}
	category, err := cat.Category(timersCategory)
	if err != nil {
		return nil, fmt.Errorf("bench timers: %w", err)
	}
	explainer, err := routing.NewExplainer(routing.Config{})
	if err != nil {
		return nil, fmt.Errorf("bench timers: %w", err)
	}
	units, err := explainer.Explain(ctx, routing.Hypothetical{Grid: timersGrid, Category: timersCategory,
		Urgency: whistlev1.Urgency_URGENCY_NORMAL, At: b.start})
	if err != nil || len(units) == 0 {
		return nil, fmt.Errorf("bench timers: no route for %s in %s: %v", timersCategory, timersGrid, err)
	}
	unit, err := cat.Unit(units[0])
	if err != nil {
		return nil, fmt.Errorf("bench timers: %w", err)
	}
	policy := category.Normal
	policy.RemindAt, policy.Chain = nil, nil
	b.raised = &whistlev1.IssueRaised{GridId: grid.ID, CommunityId: community.ID, StreetId: street.ID, CategoryId: category.ID,
		Urgency: whistlev1.Urgency_URGENCY_NORMAL, Text: "Drain blocked outside No. 12"}
	b.dispatch = &whistlev1.Dispatch{DepartmentId: unit.DepartmentID, UnitId: unit.ID,
		Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD, Policy: assignmentpb.PolicyProto(policy)}
	return b, nil
}

func (b *timersBench) close() {
	for _, nc := range b.conns {
		nc.Close()
	}
}

// caseNumbers returns n case numbers new to the run, made as intake makes them, from a request
// id; the rare key whose number another already took is passed over.
func (b *timersBench) caseNumbers(n int) []string {
	out := make([]string, 0, n)
	for len(out) < n {
		id := casenum.FromKey("bench-timers-" + b.run + "-" + strconv.Itoa(b.next))
		b.next++
		if !b.seen[id] {
			b.seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// armIssue appends an issue's raise as intake would, then its route as routing would, conditional
// on the raise, dispatching the unit with the deadlines given.
func (b *timersBench) armIssue(ctx context.Context, id string, reportIn, resolve time.Time) error {
	raised := proto.Clone(b.raised).(*whistlev1.IssueRaised)
	raised.RequestId = id
	seq, err := b.intake.Append(ctx, &whistlev1.Event{IssueId: id, OccurredAt: timestamppb.Now(), CorrelationId: id,
		Actor: &whistlev1.Actor{Subject: "intake", Role: "service"}, Payload: &whistlev1.Event_Raised{Raised: raised}})
	if err != nil {
		return fmt.Errorf("bench timers: raise %s: %w", id, err)
	}
	d := proto.Clone(b.dispatch).(*whistlev1.Dispatch)
	d.ReportInBy, d.ResolveBy = timestamppb.New(reportIn), timestamppb.New(resolve)
	_, err = b.routing.Append(ctx, &whistlev1.Event{IssueId: id, OccurredAt: timestamppb.Now(), CorrelationId: id, PrevSeq: seq,
		Actor: &whistlev1.Actor{Subject: "routing", Role: "service"},
		Payload: &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{RuleId: "bench", Cause: whistlev1.RouteCause_ROUTE_CAUSE_RAISED,
			Dispatches: []*whistlev1.Dispatch{d}}}})
	if err != nil {
		return fmt.Errorf("bench timers: route %s: %w", id, err)
	}
	return nil
}

// armAll arms ids, cfg.Concurrency at once; deadline gives the i-th its report-in deadline.
// It returns once the last append was acknowledged.
func (b *timersBench) armAll(ctx context.Context, ids []string, deadline func(i int) time.Time) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.cfg.Concurrency)
	resolve := b.start.Add(2 * farOff)
	for i, id := range ids {
		g.Go(func() error { return b.armIssue(gctx, id, deadline(i), resolve) })
	}
	return g.Wait()
}

// openTimers counts the entries of every timers shard.
func (b *timersBench) openTimers(ctx context.Context) (int64, error) {
	cmds := make([]*redis.IntCmd, eventlog.Partitions)
	if _, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.ZCard(ctx, timersShardKey(i))
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("bench timers: count the open deadlines: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// waitTimers polls the open deadlines every 50 ms until done says they are where they should be,
// and returns when it saw that. It gives up when the count stays the same for timersStall.
func (b *timersBench) waitTimers(ctx context.Context, what string, done func(n int64) bool) (time.Time, error) {
	last, moved, said := int64(-1), time.Now(), time.Now()
	for {
		n, err := b.openTimers(ctx)
		if err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		if done(n) {
			return now, nil
		}
		if n != last {
			last, moved = n, now
		} else if now.Sub(moved) > timersStall {
			return time.Time{}, fmt.Errorf("bench timers: %s: the open deadlines stayed at %d for %s", what, n, timersStall)
		}
		if now.Sub(said) >= 5*time.Second {
			fmt.Fprintf(b.cfg.Progress, "bench timers: %s: %d deadlines open\n", what, n)
			said = now
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// arm raises and routes the run's issues: those outside the storm first, with their report-in
// deadlines farOff ahead, then the storm's. The storm's instant is set once the others are
// appended, far enough ahead that, at the rate the projection has armed so far, every storm
// deadline is armed and weighed before it; a storm that comes before is refused, since its
// lateness would be the arming's. It then weighs the timers shards and the projection.
func (b *timersBench) arm(ctx context.Context, res *TimersResult) error {
	before, err := b.usedMemory(ctx)
	if err != nil {
		return err
	}
	ids := b.caseNumbers(res.Issues)
	rest, storm := ids[:len(ids)-b.cfg.Storm], ids[len(ids)-b.cfg.Storm:]
	b.stormIDs = storm
	want := int64(2 * len(ids))
	fmt.Fprintf(b.cfg.Progress, "bench timers: arming %d deadlines of %d issues, %d at once\n", want, len(ids), b.cfg.Concurrency)

	armed := make(chan error, 1)
	var armedAt time.Time
	first := time.Now()
	wctx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	go func() {
		var err error
		armedAt, err = b.waitTimers(wctx, "arming", func(n int64) bool { return n >= want })
		armed <- err
	}()
	far := b.start.Add(farOff)
	if err := b.armAll(ctx, rest, func(int) time.Time { return far }); err != nil {
		return err
	}
	n, err := b.openTimers(ctx)
	if err != nil {
		return err
	}
	// What is left to arm at the rates seen so far, appending and folding, with half again and
	// five seconds to spare.
	elapsed := time.Since(first)
	appendRate := float64(len(rest)+1) / elapsed.Seconds()
	foldRate := float64(n+1) / elapsed.Seconds()
	left := time.Duration((float64(len(storm))/appendRate + float64(want-n)/foldRate) * float64(time.Second))
	// Whole milliseconds, as the timers shards score deadlines, and no monotonic reading, so
	// that the instant compares equal to the deadlines read back from the stream.
	at := time.Now().Add(left*3/2 + 5*time.Second).Round(0).Truncate(time.Millisecond)
	res.StormAt = at
	if err := b.armAll(ctx, storm, func(int) time.Time { return at }); err != nil {
		return err
	}
	res.Appended = time.Since(first)
	if err := <-armed; err != nil {
		return err
	}
	res.ArmWall = armedAt.Sub(first)
	fmt.Fprintf(b.cfg.Progress, "bench timers: %d deadlines armed in %s; the storm falls due in %s\n",
		want, res.ArmWall.Round(time.Millisecond), time.Until(at).Round(time.Millisecond))
	if !armedAt.Before(at) {
		return fmt.Errorf("bench timers: the storm's instant passed %s before its deadlines were all armed", armedAt.Sub(at))
	}
	if b.aofPercent, err = holdAOFRewrites(ctx, b.rdb); err != nil {
		return fmt.Errorf("bench timers: hold the append-only file's rewrites off over the storm: %w", err)
	}

	if res.Armed, err = b.openTimers(ctx); err != nil {
		return err
	}
	if res.TimersBytes, err = b.memoryUsage(ctx, timersShardKeys()); err != nil {
		return err
	}
	scoreKeys, err := b.scan(ctx, "escalation:score:*")
	if err != nil {
		return err
	}
	if res.ScoreBytes, err = b.memoryUsage(ctx, scoreKeys); err != nil {
		return err
	}
	after, err := b.usedMemory(ctx)
	if err != nil {
		return err
	}
	res.UsedMemory = after - before
	if time.Now().After(at) {
		return errors.New("bench timers: the storm's instant passed while the projection was weighed")
	}
	return nil
}

// storm waits for the storm's instant, then until every storm timer is gone from the shards,
// and reads the storm's breaches off the stream, keeping them for its floor. It profiles the
// process over that time when asked.
func (b *timersBench) storm(ctx context.Context, res *TimersResult) error {
	head, err := b.head(ctx)
	if err != nil {
		return err
	}
	wantOpen := res.Armed - int64(b.cfg.Storm)
	// Before the wait, so that its collection, a second of a core at the defaults, is over before
	// the storm's instant and outside the storm's CPU.
	if err := writeAllocs(b.cfg.AllocProfile, ".before"); err != nil {
		return err
	}
	if err := sleepUntil(ctx, res.StormAt.Add(-500*time.Millisecond)); err != nil {
		return err
	}
	if b.cfg.CPUProfile != "" {
		f, err := os.Create(b.cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("bench timers: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench timers: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	cpu, heap := processCPU(), heapSoFar()
	redisBefore, redisErr := b.redisCPU(ctx)
	aofBefore, rewritesBefore, aofErr := aofSize(ctx, b.rdb)
	if _, err := b.waitTimers(ctx, "storm", func(n int64) bool { return n <= wantOpen }); err != nil {
		return err
	}
	res.Storm.CPU, res.Storm.Heap = processCPU()-cpu, heapSoFar().since(heap)
	redisAfter, redisAfterErr := b.redisCPU(ctx)
	res.Storm.RedisCPU, res.Storm.RedisMissing = redisSpent(redisBefore, redisErr, redisAfter, redisAfterErr)
	aofAfter, rewritesAfter, aofAfterErr := aofSize(ctx, b.rdb)
	if err := errors.Join(aofErr, aofAfterErr); err != nil {
		res.Storm.AOFMissing = err.Error()
	}
	res.Storm.AOFBytes, res.Storm.AOFRewrites = aofAfter-aofBefore, rewritesAfter-rewritesBefore
	pprof.StopCPUProfile()
	if err := writeAllocs(b.cfg.AllocProfile, ""); err != nil {
		return err
	}
	res.Storm.Due = b.stormIDs
	b.stormBreaches, err = b.breaches(ctx, head, &res.Storm)
	return err
}

// stormFloor measures the floor beneath the storm, with no service doing anything for it: the
// storm's breaches, as the stream stored them, appended again to a stream of their own in passes
// as the escalation service's timer loop appends them, and consumed as it alone consumes them (see
// measureFloor). The escalation service is idle meanwhile: the storm is over and its other
// deadlines lie far ahead.
func (b *timersBench) stormFloor(ctx context.Context, res *TimersResult) error {
	if len(b.stormBreaches) == 0 {
		return errors.New("bench timers: storm floor: the storm stored no breach")
	}
	issues := byIssue(b.stormBreaches)
	f := &res.StormFloor
	f.Events = len(b.stormBreaches)
	b.stormBreaches = nil // the rest of the run needs them no more
	// As many appends in flight as the timer loop has: a pass of each of its lanes.
	pass := escalation.FireLanes * escalation.DueBatch
	fmt.Fprintf(b.cfg.Progress, "bench timers: storm floor: %d breaches of %d issues appended again, in passes of %d sent together, to a stream of their own and consumed by %d consumers (escalation's, one per partition)\n",
		f.Events, len(issues), pass, eventlog.Partitions)
	wall, err := measureFloor(ctx, b.js, issues, true, 1, inPasses(pass), b.cfg.Progress, func(ctx context.Context) func(context.Context) {
		cpu := processCPU()
		redisBefore, redisErr := b.redisCPU(ctx)
		return func(ctx context.Context) {
			f.CPU = processCPU() - cpu
			redisAfter, redisAfterErr := b.redisCPU(ctx)
			f.RedisCPU, f.RedisMissing = redisSpent(redisBefore, redisErr, redisAfter, redisAfterErr)
		}
	})
	if err != nil {
		return err
	}
	f.Wall = wall
	return nil
}

// steady arms the steady phase's issues, whose report-in deadlines fall due cfg.Rate a second for
// cfg.Duration from an instant far enough ahead that all are armed before it, waits until the last
// has fired, and reads their breaches off the stream.
func (b *timersBench) steady(ctx context.Context, res *TimersResult) error {
	n := max(1, int(b.cfg.Rate*b.cfg.Duration.Seconds()))
	open, err := b.openTimers(ctx)
	if err != nil {
		return err
	}
	head, err := b.head(ctx)
	if err != nil {
		return err
	}
	// At the arming's own rate, twice over, and three seconds to spare.
	arming := time.Duration(float64(2*n) / float64(res.Armed) * float64(res.ArmWall))
	from := time.Now().Add(2*arming + 3*time.Second).Round(0).Truncate(time.Millisecond)
	every := time.Duration(float64(time.Second) / b.cfg.Rate)
	deadline := func(i int) time.Time { return from.Add(time.Duration(i) * every) }
	fmt.Fprintf(b.cfg.Progress, "bench timers: steady: %d deadlines, %.0f a second, from %s on\n", n, b.cfg.Rate, time.Until(from).Round(time.Millisecond))
	res.Steady.Due = b.caseNumbers(n)
	if err := b.armAll(ctx, res.Steady.Due, deadline); err != nil {
		return err
	}
	armedAt, err := b.waitTimers(ctx, "steady arming", func(m int64) bool { return m >= open+int64(2*n) })
	if err != nil {
		return err
	}
	if !armedAt.Before(from) {
		return fmt.Errorf("bench timers: the steady phase's first deadline passed %s before its deadlines were all armed", armedAt.Sub(from))
	}
	if err := sleepUntil(ctx, from); err != nil {
		return err
	}
	cpu, heap := processCPU(), heapSoFar()
	redisBefore, redisErr := b.redisCPU(ctx)
	if _, err := b.waitTimers(ctx, "steady", func(m int64) bool { return m <= open+int64(n) }); err != nil {
		return err
	}
	res.Steady.CPU, res.Steady.Heap = processCPU()-cpu, heapSoFar().since(heap)
	redisAfter, redisAfterErr := b.redisCPU(ctx)
	res.Steady.RedisCPU, res.Steady.RedisMissing = redisSpent(redisBefore, redisErr, redisAfter, redisAfterErr)
	_, err = b.breaches(ctx, head, &res.Steady)
	return err
}

// breaches reads every breach stored after the stream sequence after into f, whose Due are the
// issues whose report-in deadlines fell due: each breach of one of those is counted for it and
// timed, any other is stray. The lateness and the rate are taken over the first breach of each
// deadline; it is for the caller to judge the counts. It returns every breach it read, as the
// stream stored it.
func (b *timersBench) breaches(ctx context.Context, after uint64, f *Firing) ([]floorEvent, error) {
	cons, err := b.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{eventlog.KindSubjects("breached")},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1})
	if err != nil {
		return nil, fmt.Errorf("bench timers: read the breaches: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench timers: read the breaches: %w", err)
	}
	due := make(map[string]bool, len(f.Due))
	for _, id := range f.Due {
		due[id] = true
	}
	f.Fired = make(map[string]int, len(f.Due))
	var stored []floorEvent
	var first, last, firstDeadline time.Time
	for pending := info.NumPending; pending > 0; {
		batch, err := cons.Fetch(int(min(pending, 1000)), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			return nil, fmt.Errorf("bench timers: read the breaches: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				return nil, fmt.Errorf("bench timers: read the breaches: %w", err)
			}
			pending = meta.NumPending
			raw, err := floorEventOf(msg, meta)
			if err != nil {
				return nil, fmt.Errorf("bench timers: read the breaches: %w", err)
			}
			stored = append(stored, raw)
			ev := &whistlev1.Event{}
			if err := proto.Unmarshal(msg.Data(), ev); err != nil {
				return nil, fmt.Errorf("bench timers: decode %s: %w", msg.Subject(), err)
			}
			id, br := ev.GetIssueId(), ev.GetBreached()
			if !due[id] || br.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN {
				f.Stray++
				continue
			}
			if f.Fired[id]++; f.Fired[id] > 1 {
				continue
			}
			deadline, stored := br.GetDeadline().AsTime(), meta.Timestamp
			f.Lateness = append(f.Lateness, stored.Sub(deadline))
			if first.IsZero() || stored.Before(first) {
				first = stored
			}
			if stored.After(last) {
				last = stored
			}
			if firstDeadline.IsZero() || deadline.Before(firstDeadline) {
				firstDeadline = deadline
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("bench timers: read the breaches: %w", err)
		}
		if got == 0 {
			return nil, fmt.Errorf("bench timers: read the breaches: %d pending, none delivered", pending)
		}
	}
	for _, n := range f.Fired {
		f.Breaches += n
		if n > 1 {
			f.Twice++
		}
	}
	f.Once = len(f.Lateness)
	f.Wall, f.Drain = last.Sub(first), last.Sub(firstDeadline)
	return stored, nil
}

// head is the stream's last sequence.
func (b *timersBench) head(ctx context.Context) (uint64, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench timers: %w", err)
	}
	return info.State.LastSeq, nil
}

// timersShardKeys are the keys of every timers shard.
func timersShardKeys() []string {
	keys := make([]string, eventlog.Partitions)
	for i := range keys {
		keys[i] = timersShardKey(i)
	}
	return keys
}

// memoryUsage sums MEMORY USAGE of keys, every element counted (SAMPLES 0) rather than estimated
// from a sample.
func (b *timersBench) memoryUsage(ctx context.Context, keys []string) (int64, error) {
	var sum int64
	for _, k := range keys {
		n, err := b.rdb.MemoryUsage(ctx, k, 0).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return 0, fmt.Errorf("bench timers: MEMORY USAGE %s: %w", k, err)
		}
		sum += n
	}
	return sum, nil
}

// scan lists the keys matching pattern.
func (b *timersBench) scan(ctx context.Context, pattern string) ([]string, error) {
	var keys []string
	iter := b.rdb.Scan(ctx, 0, pattern, 10_000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("bench timers: SCAN %s: %w", pattern, err)
	}
	return keys, nil
}

// usedMemory is redis-server's used_memory, in bytes.
func (b *timersBench) usedMemory(ctx context.Context) (int64, error) {
	info, err := b.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("bench timers: INFO memory: %w", err)
	}
	n, err := strconv.ParseInt(infoFields(info)["used_memory"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bench timers: INFO memory: used_memory: %w", err)
	}
	return n, nil
}

// redisCPU reads redis-server's CPU seconds, or why it could not.
func (b *timersBench) redisCPU(ctx context.Context) (float64, error) {
	info, err := b.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	return redisCPU(info)
}

// redisSpent is the CPU redis-server spent between two readings, or why it is not known.
func redisSpent(before float64, beforeErr error, after float64, afterErr error) (time.Duration, string) {
	if err := errors.Join(beforeErr, afterErr); err != nil {
		return 0, err.Error()
	}
	return time.Duration((after - before) * float64(time.Second)), ""
}

// loadAverage is the machine's load average over 1, 5 and 15 minutes, where /proc says it.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Print writes the figures as a markdown table.
func (r *TimersResult) Print(w io.Writer) error {
	c := r.Config
	perDeadline := func(n int64) string { return fmt.Sprintf("%.1f B", float64(n)/float64(r.Armed)) }
	perIssue := func(n int64) string { return fmt.Sprintf("%.1f B", float64(n)/float64(r.Issues)) }
	rows := [][]string{
		{"open deadlines armed (2 per issue: report-in and resolve)", fmt.Sprintf("%d (%d issues)", r.Armed, r.Issues)},
		{"arming: deadlines armed/s (first append → all in the timers shards)", fmt.Sprintf("%.0f (%s)", float64(r.Armed)/r.ArmWall.Seconds(), r.ArmWall.Round(time.Millisecond))},
		{"arming: appends acknowledged/s (a raise and a route per issue)", fmt.Sprintf("%.0f (%s)", float64(2*r.Issues)/r.Appended.Seconds(), r.Appended.Round(time.Millisecond))},
		{"Redis bytes per open deadline: the timers shards (MEMORY USAGE, all 8) ÷ open deadlines", perDeadline(r.TimersBytes)},
		{"Redis bytes per issue: used_memory growth ÷ issues (its document, 2 timers, scorecard entries)", perIssue(r.UsedMemory)},
		{"  of which its 2 timers in the timers shards", perIssue(r.TimersBytes)},
		{"  of which scorecard keys (escalation:score:*, MEMORY USAGE) per issue", perIssue(r.ScoreBytes)},
		{"  of which the rest, mostly the issue's JSON document, per issue", perIssue(r.UsedMemory - r.TimersBytes - r.ScoreBytes)},
	}
	rows = append(rows, firingRows(fmt.Sprintf("storm (%d report-in deadlines at one instant)", c.Storm), r.Storm)...)
	rows = append(rows, stormFloorRows(r.Storm, r.StormFloor)...)
	rows = append(rows, aofRows(r.Storm, r.AOFRewrite)...)
	if c.Rate > 0 {
		rows = append(rows, firingRows(fmt.Sprintf("steady (%.0f/s for %s)", c.Rate, c.Duration), r.Steady)...)
	}
	rec := r.Reconciliation
	perThousand := func(d time.Duration) string { return ms(d * 1000 / time.Duration(max(r.Issues, 1))) }
	redis := "not measured: " + rec.RedisMissing
	if rec.RedisMissing == "" {
		redis = perThousand(rec.RedisCPU)
	}
	rows = append(rows,
		[]string{fmt.Sprintf("reconciliation, one pass over %d issues: time; timers put back (should be 0)", r.Issues), fmt.Sprintf("%s; %d", ms(rec.Wall), rec.Repaired)},
		[]string{"reconciliation: CPU per 1,000 issues, whistle process", perThousand(rec.CPU)},
		[]string{"reconciliation: CPU per 1,000 issues, redis-server", redis},
		[]string{"load average before (1, 5, 15 min)", orNotKnown(r.LoadBefore)},
		[]string{"load average after", orNotKnown(r.LoadAfter)},
		[]string{"Go, GOMAXPROCS", fmt.Sprintf("%s, %d", runtime.Version(), runtime.GOMAXPROCS(0))},
	)
	return printTable(w, []string{"measure", "value"}, rows)
}

// firingRows are the rows of one firing.
func firingRows(name string, f Firing) [][]string {
	rows := [][]string{
		{name + ": deadlines breached once, of due", fmt.Sprintf("%d of %d", f.Once, len(f.Due))},
		{name + ": deadlines breached more than once; breaches of deadlines not due", fmt.Sprintf("%d; %d", f.Twice, f.Stray)},
		{name + ": breaches stored/s (first → last stored)", fmt.Sprintf("%.0f", f.Rate())},
		{name + ": first deadline → last breach stored", ms(f.Drain)},
		{name + ": lateness p50 (stored − deadline, stream clock)", ms(Percentile(f.Lateness, 50))},
		{name + ": lateness p99", ms(Percentile(f.Lateness, 99))},
		{name + ": lateness max", ms(Percentile(f.Lateness, 100))},
	}
	if f.Once > 0 {
		redis := "not measured: " + f.RedisMissing
		if f.RedisMissing == "" {
			redis = us(f.RedisCPU / time.Duration(f.Once))
		}
		rows = append(rows,
			[]string{name + ": CPU per breach, whistle process (escalation, NATS, the bench's polling)", us(f.CPU / time.Duration(f.Once))},
			[]string{name + ": CPU per breach, redis-server", redis},
			[]string{name + ": Go heap allocated per breach, whistle process; collections that ran during it, completed in it", fmt.Sprintf("%.1f KB; %d, %d", float64(f.Heap.Allocated)/float64(f.Once)/1e3, f.Heap.Ran(), f.Heap.Collections)})
	}
	return rows
}

// stormFloorRows are the rows of the storm's floor, and the storm's figures as ratios of its.
func stormFloorRows(storm Firing, floor Floor) [][]string {
	const name = "storm floor: the storm's breaches appended again and consumed, JetStream alone"
	if floor.Events == 0 {
		return [][]string{{name, "not measured"}}
	}
	perBreach := func(d time.Duration) time.Duration { return d / time.Duration(floor.Events) }
	redis := "not measured: " + floor.RedisMissing
	if floor.RedisMissing == "" {
		redis = us(perBreach(floor.RedisCPU))
	}
	rows := [][]string{
		{name + ": breaches/s", fmt.Sprintf("%.0f (%d in %s)", floor.Rate(), floor.Events, floor.Wall.Round(time.Millisecond))},
		{name + ": CPU per breach, whistle process (NATS, the bench's appends and consumers)", us(perBreach(floor.CPU))},
		{name + ": CPU per breach, redis-server (nothing to do for it)", redis},
		{"storm breaches/s ÷ floor breaches/s", fmt.Sprintf("%.4f", storm.Rate()/floor.Rate())},
	}
	ratio := "not measured"
	switch {
	case storm.RedisMissing != "" || floor.RedisMissing != "":
		ratio += ": redis-server's CPU: " + cmp.Or(storm.RedisMissing, floor.RedisMissing)
	case storm.Once > 0 && floor.CPU+floor.RedisCPU > 0:
		stormCPU := float64(storm.CPU+storm.RedisCPU) / float64(storm.Once)
		floorCPU := float64(floor.CPU+floor.RedisCPU) / float64(floor.Events)
		ratio = fmt.Sprintf("%.1f", stormCPU/floorCPU)
	}
	return append(rows, []string{"storm CPU per breach (process + redis-server) ÷ floor's", ratio})
}

// aofRows are the rows of the storm's appends to redis-server's append-only file, and of the
// rewrite they owe a share of (see AOFRewrite).
func aofRows(storm Firing, rw AOFRewrite) [][]string {
	const name = "storm: redis-server's append-only file"
	if storm.AOFMissing != "" || storm.Once == 0 {
		return [][]string{{name, "not measured: " + cmp.Or(storm.AOFMissing, "no breach")}}
	}
	perBreach := storm.AOFBytes / int64(storm.Once)
	rows := [][]string{
		{name + ": bytes appended per breach; rewrites during the storm (held off, so 0)", fmt.Sprintf("%d B; %d", perBreach, storm.AOFRewrites)},
	}
	if rw.Missing != "" {
		return append(rows, []string{"append-only file rewrite after the storm", "not measured: " + rw.Missing})
	}
	amortized := rw.Amortized(storm.AOFBytes) / time.Duration(storm.Once)
	rows = append(rows,
		[]string{"append-only file rewrite after the storm: CPU (redis-server and its child); file size after", fmt.Sprintf("%s; %.1f MB", ms(rw.CPU), float64(rw.Base)/1e6)},
		[]string{fmt.Sprintf("storm: CPU per breach, its share of the rewrites (one per %d%% of the file appended)", rw.Percent), us(amortized)})
	if storm.RedisMissing == "" {
		all := (storm.CPU+storm.RedisCPU)/time.Duration(storm.Once) + amortized
		rows = append(rows, []string{"storm: CPU per breach in all (process + redis-server + share of the rewrites)", us(all)})
	}
	return rows
}

func orNotKnown(s string) string {
	if s == "" {
		return "not known"
	}
	return s
}
