package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/cluster"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/systemtest"
)

// The crash test's deadlines: every issue's report-in and resolution fall due this long after
// its raise was stored, so that they fall due over the time the raises take, shifted, while
// escalation is killed again and again.
const (
	crashReportIn = 8 * time.Second
	crashResolve  = 14 * time.Second
	// crashIssues is how many issues are raised: each is routed to at least one unit, whose
	// part has both deadlines, so at least twice as many deadlines fall due.
	crashIssues = 600
	// raisers is how many raises are in flight at once.
	raisers = 16
)

// TestKillingTheEscalationProcessRepeatedlyWhileThousandsOfDeadlinesFallDueFiresEachOnce raises
// six hundred issues through intake, which routing dispatches with their deadlines frozen,
// and kills -9 the escalation replicas every one to three seconds while those deadlines fall due:
// both at first and every third time, when they stay down for a while, so that deadlines pass
// with no escalation running and are fired late by the replicas started again, and one or the
// other in between.
// Once the stream's clock has passed the last deadline and escalation has fired what it owes, the
// stream must hold exactly one breach of every deadline, none missing and none twice, naming the
// frozen deadline and stored no earlier than it; and escalation must hold no timer more.
func TestKillingTheEscalationProcessRepeatedlyWhileThousandsOfDeadlinesFallDueFiresEachOnce(t *testing.T) {
	e := startClusterOn(t, systemtest.QuickCatalog(t, crashReportIn, crashResolve))
	grids, categories := e.routable()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	began := time.Now()
	// The first deadlines fall due crashReportIn after the first raises.
	kills := e.startKilling(rand.New(rand.NewPCG(seed, seed>>1)), began.Add(crashReportIn))
	defer kills.stop()
	ids := e.raiseMany(t, "crash", crashIssues, grids, categories)
	// Every deadline was frozen counting from a raise stored before now. The killing goes on
	// past the last deadline until about half of them has fired (each issue has two or more),
	// so that replicas die while they fire too, not only while deadlines pass.
	last := time.Now().Add(crashResolve)
	t.Logf("raised %d issues in %s", len(ids), time.Since(began).Round(time.Millisecond))
	kills.until(last, 2*len(ids))
	kills.wait(t)

	systemtest.WaitFired(t, e.log, last, settleTimeout, 2*time.Second)
	// Escalation has fired everything once nothing waits for it and it keeps no timer: only then
	// could no breach more follow, so the check that none fired twice is read after that.
	wait.For(t, settleTimeout, 200*time.Millisecond, func() error {
		n, err := e.log.Pending(t.Context(), "escalation")
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("escalation has %d events to apply", n)
		}
		return e.noTimers(t)
	})
	fs, err := systemtest.ReadFirings(t.Context(), e.log)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Check(); err != nil {
		t.Error(err)
	}

	// The test proves nothing unless thousands of deadlines fell due, every issue raised among
	// them, and some while no escalation ran.
	routed := map[string]bool{}
	var deadlines []time.Time
	var lateness []time.Duration
	for c, f := range fs.Clocks {
		routed[c.Issue] = true
		deadlines = append(deadlines, f.Deadline)
		for _, b := range f.Breaches {
			lateness = append(lateness, b.Time.Sub(f.Deadline))
		}
	}
	for _, id := range ids {
		if !routed[id] {
			t.Errorf("issue %s was raised and has no deadline in the stream", id)
		}
	}
	if len(fs.Clocks) < 2000 {
		t.Errorf("%d deadlines fell due, want at least 2000", len(fs.Clocks))
	}
	unattended := 0
	for _, d := range deadlines {
		for _, w := range kills.down {
			if !d.Before(w.from) && d.Before(w.to) {
				unattended++
				break
			}
		}
	}
	if unattended == 0 {
		t.Errorf("no deadline fell due while both escalation replicas were down (%d such windows)", len(kills.down))
	}
	if kills.firing == 0 {
		t.Errorf("no replica was killed while breaches were being recorded (%d kills)", kills.killed)
	}
	if len(deadlines) == 0 || len(lateness) == 0 {
		return
	}
	slices.SortFunc(deadlines, time.Time.Compare)
	slices.Sort(lateness)
	t.Logf("%d deadlines fell due over %s, %d of them while no escalation ran; %d kills in %d rounds, %d of them while breaches "+
		"were being recorded; each fired once, late by %s at the median and %s at most", len(deadlines),
		deadlines[len(deadlines)-1].Sub(deadlines[0]).Round(time.Millisecond), unattended, kills.killed, kills.rounds, kills.firing,
		lateness[len(lateness)/2].Round(time.Millisecond), lateness[len(lateness)-1].Round(time.Millisecond))
}

// raiseMany raises n issues through intake's replicas, raisers at a time, each grid and category
// in turn, and returns their ids. A raise that fails is retried with its request id, so it has
// the effect of one.
func (e *env) raiseMany(t *testing.T, prefix string, n int, grids, categories []string) []string {
	t.Helper()
	ids := make([]string, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range raisers {
		wg.Go(func() {
			for i := range next {
				grid := grids[i%len(grids)]
				var res *whistlev1.RaiseIssueResponse
				err := e.call(t.Context(), "intake", callTimeout, func(ctx context.Context, c *grpc.ClientConn) error {
					var err error
					res, err = whistlev1.NewIntakeServiceClient(c).RaiseIssue(ctx, &whistlev1.RaiseIssueRequest{
						RequestId: fmt.Sprintf("%s-%d", prefix, i), GridId: grid, CategoryId: categories[i%len(categories)],
						Urgency: whistlev1.Urgency_URGENCY_NORMAL, Text: "left to breach",
					}, e.as(systemtest.GridWorker(grid)))
					return err
				})
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("raise %d: %w", i, err))
				}
				ids[i] = res.GetIssue().GetId()
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d raises failed, the first: %v", len(errs), errs[0])
	}
	return ids
}

// window is a span of time during which no escalation replica ran.
type window struct{ from, to time.Time }

// killingCap bounds how long the killing goes on past the last deadline waiting for breaches to
// be recorded.
const killingCap = 15 * time.Second

// killer kills -9 escalation's replicas over and over and starts them again (see
// startKilling).
type killer struct {
	e      *env
	rng    *rand.Rand
	end    chan stopAt
	cancel context.CancelFunc
	done   chan struct{}

	// Set by the killing goroutine, read once done is closed.
	rounds int
	killed int
	firing int // kills made after the first breach was recorded
	down   []window
	err    error
}

// stopAt is when the killing may stop: once the time has passed and the stream holds breaches.
type stopAt struct {
	time     time.Time
	breaches int
}

// startKilling starts killing escalation's replicas from the time from: both at once first, and
// every third round after, when they stay down for one to three seconds; one or the other in the
// other rounds; each round after a pause of one to three seconds. Each killed replica is started
// again with its same command. It goes on until until's time has passed, the stream holds
// until's number of breaches (or killingCap has passed too), and both replicas have been down
// together at least twice.
func (e *env) startKilling(rng *rand.Rand, from time.Time) *killer {
	ctx, cancel := context.WithCancel(context.Background())
	k := &killer{e: e, rng: rng, end: make(chan stopAt, 1), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		k.err = k.run(ctx, from)
	}()
	return k
}

// until tells the killer when it may stop.
func (k *killer) until(at time.Time, breaches int) { k.end <- stopAt{at, breaches} }

// stop ends the killing at once.
func (k *killer) stop() {
	k.cancel()
	<-k.done
}

// wait waits until the killing has ended, with both replicas running and healthy again.
func (k *killer) wait(t *testing.T) {
	t.Helper()
	select {
	case <-k.done:
	case <-t.Context().Done():
		k.stop()
	}
	if k.err != nil {
		t.Fatalf("killing escalation: %v", k.err)
	}
}

// pause waits between one and three seconds, and learns meanwhile when to stop.
func (k *killer) pause(ctx context.Context, end *stopAt) error {
	return k.pauseFor(ctx, end, time.Second+time.Duration(k.rng.Int64N(int64(2*time.Second))))
}

// pauseFor waits for d, and learns meanwhile when to stop.
func (k *killer) pauseFor(ctx context.Context, end *stopAt, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case at := <-k.end:
			*end = at
		case <-timer.C:
			return nil
		}
	}
}

// over reports whether the killing may stop.
func (k *killer) over(ctx context.Context, end stopAt, both int) (bool, error) {
	if end.time.IsZero() || time.Now().Before(end.time) || both < 2 {
		return false, nil
	}
	if time.Now().After(end.time.Add(killingCap)) {
		return true, nil
	}
	n, err := k.e.breachesStored(ctx)
	return n >= end.breaches, err
}

func (k *killer) run(ctx context.Context, from time.Time) error {
	var names []string
	for _, p := range k.e.st.Services {
		if p.Role == "escalation" {
			names = append(names, p.Name)
		}
	}
	if len(names) < 2 {
		return fmt.Errorf("escalation runs %d replicas, the test needs two", len(names))
	}
	var end stopAt
	if err := k.pauseFor(ctx, &end, time.Until(from)); err != nil {
		return err
	}
	both := 0
	for ; ; k.rounds++ {
		over, err := k.over(ctx, end, both)
		if err != nil {
			return err
		}
		if over {
			break
		}
		if k.rounds > 0 {
			if err := k.pause(ctx, &end); err != nil {
				return err
			}
		}
		victims := []string{names[k.rng.IntN(len(names))]}
		if k.rounds%3 == 0 {
			victims, both = names, both+1
		}
		fired, err := k.e.breachesStored(ctx)
		if err != nil {
			return err
		}
		for _, name := range victims {
			p, _ := k.e.st.Proc(name)
			if err := k.e.st.Kill(p); err != nil {
				return err
			}
			k.killed++
			if fired > 0 {
				k.firing++
			}
		}
		if len(victims) == len(names) {
			w := window{from: time.Now()}
			if err := k.pause(ctx, &end); err != nil {
				return err
			}
			w.to = time.Now()
			k.down = append(k.down, w)
		}
		for _, name := range victims {
			p, _ := k.e.st.Proc(name)
			if _, err := k.e.st.Restart(p); err != nil {
				return err
			}
		}
	}
	for _, name := range names {
		p, _ := k.e.st.Proc(name)
		if err := cluster.WaitHealthy(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// breachesStored counts the breach events the stream holds.
func (e *env) breachesStored(ctx context.Context) (int, error) {
	js, err := jetstream.New(e.nc)
	if err != nil {
		return 0, err
	}
	stream, err := js.Stream(ctx, eventlog.StreamName)
	if err != nil {
		return 0, err
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(eventlog.KindSubjects("breached")))
	if err != nil {
		return 0, err
	}
	n := uint64(0)
	for _, c := range info.State.Subjects {
		n += c
	}
	return int(n), nil
}

// noTimers reports an error while escalation keeps a timer in any partition.
func (e *env) noTimers(t *testing.T) error {
	rdb, err := redisx.Connect(t.Context(), e.st.AdminRedisURL())
	if err != nil {
		return err
	}
	defer rdb.Close()
	return systemtest.NoTimers(t.Context(), rdb)
}
