package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// The deadline phase raises its issues in this grid and category, at normal urgency; every
// assignment they get has the same report-in limit, DeadlineReportIn.
const (
	deadlineGrid     = "xinhua-taoyuan-01"
	deadlineCategory = "blocked-drain"
)

// DeadlineReportIn is the report-in limit of the deadline phase's category, in place of the
// sample city's hour: long enough that the raises are still under way when the first deadlines
// pass, so the breaches are recorded under load, and short enough that the phase takes seconds.
const DeadlineReportIn = 3 * time.Second

// breachTimeout is how long after the last raise every breach must have arrived.
const breachTimeout = DeadlineReportIn + lifecycleTimeout

// runDeadlines measures how late breaches are recorded. Deadlines are judged on the stream's
// clock (routing sets them from the time the stream stored the raise, and escalation records a
// breach only once the stream's clock has passed the deadline), so no clock the bench holds can
// make one pass: the phase starts a system of its own on the real clock with a catalog whose
// deadline category has a report-in limit of DeadlineReportIn, raises cfg.Deadlines issues as
// fast as cfg.Concurrency callers can, answers none of them, and takes each breach from a
// supervisor's WatchBreaches stream. How late each was recorded is read off the breach itself,
// breached_at − deadline, both times of the stream's clock.
func runDeadlines(ctx context.Context, cfg Config, res *Result) error {
	dir, err := os.MkdirTemp("", "whistle-bench-deadlines-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	catalogPath, err := writeShortDeadlineCatalog(dir, deadlineCategory, DeadlineReportIn)
	if err != nil {
		return err
	}
	sys, err := system.Start(ctx, system.Options{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Clock: clock.Real(), CatalogPath: catalogPath, Sync: cfg.Sync, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("bench: start the deadline system: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sys.Stop(sctx)
	}()
	tgt := target{addr: sys.GRPCAddr(), auth: sys.Authority(), nc: sys.Deps().NATS}
	conn, err := dial(tgt, authx.Principal{Subject: "bench-supervisor", Role: authx.RoleSupervisor, Scope: authx.CityScope})
	if err != nil {
		return err
	}
	defer conn.Close()
	intake, routing := whistlev1.NewIntakeServiceClient(conn), whistlev1.NewRoutingServiceClient(conn)
	escalation := whistlev1.NewEscalationServiceClient(conn)

	plan, err := routing.ExplainRoute(ctx, &whistlev1.ExplainRouteRequest{GridId: deadlineGrid, CategoryId: deadlineCategory})
	if err != nil || !plan.GetMatched() {
		return fmt.Errorf("bench: no route for %s in %s: %v", deadlineCategory, deadlineGrid, err)
	}
	for _, a := range plan.GetAssignments() {
		if got := a.GetPolicy().GetReportInWithin().AsDuration(); got != DeadlineReportIn {
			return fmt.Errorf("bench: %s would report in within %s, not the catalog's %s", a.GetUnitId(), got, DeadlineReportIn)
		}
	}
	want := cfg.Deadlines * len(plan.GetAssignments())

	// The watch shows breaches from the stream's head on, so it begins before the first raise.
	// It ends, and the phase with it, if the breaches are not all in breachTimeout after the
	// last raise.
	wctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	watch, err := escalation.WatchBreaches(wctx, &whistlev1.WatchBreachesRequest{})
	if err != nil {
		return fmt.Errorf("bench: watch breaches: %w", err)
	}
	if _, err := watch.Header(); err != nil { // the watch listens once its headers arrive
		return fmt.Errorf("bench: watch breaches: %w", err)
	}

	run := time.Now().UnixNano()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Concurrency)
	for i := range cfg.Deadlines {
		g.Go(func() error {
			_, err := intake.RaiseIssue(gctx, &whistlev1.RaiseIssueRequest{
				RequestId: fmt.Sprintf("bench-deadline-%d-%d", run, i), GridId: deadlineGrid, CategoryId: deadlineCategory,
				Urgency: whistlev1.Urgency_URGENCY_NORMAL, Text: fmt.Sprintf("bench deadline #%d: drain overflowing", i)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("bench: raise: %w", err)
	}
	timeout := time.AfterFunc(breachTimeout, cancelWatch)
	defer timeout.Stop()

	seen := map[string]bool{}
	var first, last time.Time // the earliest and latest deadline breached
	var lastBreach time.Time  // when the stream stored the latest breach
	for len(res.Breach) < want {
		msg, err := watch.Recv()
		if err != nil {
			return fmt.Errorf("bench: %d of %d breaches arrived within %s of the last raise: %w", len(res.Breach), want, breachTimeout, err)
		}
		b := msg.GetBreach()
		if b == nil {
			continue
		}
		if b.GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN {
			return fmt.Errorf("bench: a %v breach of %s was recorded; only report-in deadlines pass in the phase", b.GetKind(), b.GetIssueId())
		}
		key := b.GetIssueId() + "/" + b.GetUnitId()
		if seen[key] {
			return fmt.Errorf("bench: the report-in deadline of %s breached twice", key)
		}
		seen[key] = true
		deadline := b.GetDeadline().AsTime()
		if first.IsZero() || deadline.Before(first) {
			first = deadline
		}
		if deadline.After(last) {
			last = deadline
		}
		if at := b.GetBreachedAt().AsTime(); at.After(lastBreach) {
			lastBreach = at
		}
		late := b.GetBreachedAt().AsTime().Sub(deadline)
		if late < 0 {
			return fmt.Errorf("bench: the breach of %s/%s was recorded %s before its deadline", b.GetIssueId(), b.GetUnitId(), -late)
		}
		res.Breach = append(res.Breach, late)
	}
	res.DeadlineReportIn, res.DeadlineSpread = DeadlineReportIn, last.Sub(first)
	res.BreachWall = lastBreach.Sub(first)
	return nil
}
