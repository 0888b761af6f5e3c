package bench

import (
	"context"
	"errors"
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

// The deadline phase raises its issues in this grid and category; every assignment they get
// has the same report-in limit, so that one step of the clock passes all their deadlines.
const (
	deadlineGrid     = "xinhua-taoyuan-01"
	deadlineCategory = "blocked-drain"
)

// runDeadlines measures how late breaches fire: on a system of its own whose clock the bench
// moves, it dispatches cfg.Deadlines issues, waits until the escalation service has every
// timer and sleeps, moves the clock past all their report-in deadlines at once, and times each
// breach from that moment to its arrival on a supervisor's WatchBreaches stream.
func runDeadlines(ctx context.Context, cfg Config, res *Result) error {
	dir, err := os.MkdirTemp("", "whistle-bench-deadlines-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	clk := clock.NewFake(time.Now())
	sys, err := system.Start(ctx, system.Options{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Clock: clk, Sync: cfg.Sync, Logger: slog.New(slog.DiscardHandler)})
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
	reportIn := plan.GetAssignments()[0].GetPolicy().GetReportInWithin().AsDuration()
	want := cfg.Deadlines * len(plan.GetAssignments())

	watch, err := escalation.WatchBreaches(ctx, &whistlev1.WatchBreachesRequest{})
	if err != nil {
		return fmt.Errorf("bench: watch breaches: %w", err)
	}
	if _, err := watch.Header(); err != nil { // the watch listens once its headers arrive
		return fmt.Errorf("bench: watch breaches: %w", err)
	}

	raised := make([]string, cfg.Deadlines)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Concurrency)
	for i := range raised {
		g.Go(func() error {
			r, err := intake.RaiseIssue(gctx, &whistlev1.RaiseIssueRequest{GridId: deadlineGrid,
				CategoryId: deadlineCategory, Text: fmt.Sprintf("bench deadline #%d: drain overflowing", i)})
			if err == nil {
				raised[i] = r.GetIssue().GetId()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("bench: raise: %w", err)
	}
	// Every timer is set once the escalation consumer has taken every event, and the loop waits
	// for the first of them once it sleeps on the clock.
	if err := until(ctx, func() (bool, error) {
		var behind uint64
		for _, name := range []string{"routing", "escalation"} {
			n, err := sys.Deps().Log.Pending(ctx, name)
			if err != nil {
				return false, err
			}
			behind += n
		}
		return behind == 0 && clk.Waiters() > 0, nil
	}); err != nil {
		return fmt.Errorf("bench: wait for the timers: %w", err)
	}

	passed := time.Now()
	clk.Advance(reportIn + time.Second)
	for range want {
		msg, err := watch.Recv()
		if err != nil {
			return fmt.Errorf("bench: %d of %d breaches arrived: %w", len(res.Breach), want, err)
		}
		if msg.GetBreach().GetKind() != whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN {
			return fmt.Errorf("bench: a %v breach fired; only report-in deadlines passed", msg.GetBreach().GetKind())
		}
		res.Breach = append(res.Breach, time.Since(passed))
	}
	return nil
}

// until polls done every 10ms until it reports true or ctx ends; an error only means "not yet"
// and is reported with the timeout.
func until(ctx context.Context, done func() (bool, error)) error {
	for {
		ok, err := done()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
