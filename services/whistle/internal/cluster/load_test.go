package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/grpcx"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/cluster"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/systemtest"
)

// The whistle program the cluster's processes run, built once for the package's tests.
var (
	buildOnce  sync.Once
	binaryPath string
	buildErr   error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryPath != "" {
		os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}

// whistleBinary builds the whistle program from the workspace and returns its path.
func whistleBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "whistle-cluster-test-")
		if err != nil {
			buildErr = err
			return
		}
		binaryPath = filepath.Join(dir, "whistle")
		out, err := exec.Command("go", "build", "-o", binaryPath, "github.com/whistle-dispatch/whistle/services/whistle").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build whistle: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binaryPath
}

// Timing of the fault tests: deadlines short enough to pass during a test, and the bound on
// how long a service may take to answer again after a fault.
const (
	reportIn      = 4 * time.Second
	maxRecovery   = 5 * time.Second
	callTimeout   = 2 * time.Second
	probeTimeout  = time.Second
	settleTimeout = 2 * time.Minute
)

// env is a running cluster as a test drives it: through the services' gRPC APIs, replica by
// replica, and the stream read as the tools user.
type env struct {
	t    *testing.T
	st   *cluster.State
	nc   *nats.Conn // the tools user's
	log  *eventlog.Log
	auth *authx.Authority

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// startCluster starts a cluster for the test, with every SLA policy's report-in set to
// reportIn, and stops it when the test ends.
func startCluster(t *testing.T) *env {
	t.Helper()
	return startClusterOn(t, systemtest.QuickCatalog(t, reportIn, time.Hour))
}

// startClusterOn starts a cluster for the test on the catalog file at path, and stops it when
// the test ends.
func startClusterOn(t *testing.T, catalogPath string) *env {
	t.Helper()
	bin := whistleBinary(t)
	dir := t.TempDir()
	t.Cleanup(func() {
		if err := cluster.Down(dir, nil); err != nil {
			t.Errorf("cluster down: %v", err)
		}
		if t.Failed() {
			logTails(t, dir)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	st, err := cluster.Up(ctx, cluster.Options{Dir: dir, Binary: bin, CatalogPath: catalogPath})
	if err != nil {
		t.Fatal(err)
	}
	key, err := authx.LoadKey(filepath.Join(st.DataDir, "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	users, err := natsx.ReadUsersConfig(filepath.Join(st.DataDir, system.UsersFile))
	if err != nil {
		t.Fatal(err)
	}
	password := ""
	for _, u := range users {
		if u.Username == system.ToolsUser {
			password = u.Password
		}
	}
	nc, err := natsx.Connect(ctx, st.NATSURL, t.Name(), nats.UserInfo(system.ToolsUser, password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	log, err := eventlog.Open(ctx, nc, eventlog.Config{Replicas: cluster.NATSNodes})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, nc: nc, log: log, auth: authx.NewAuthority(key), conns: map[string]*grpc.ClientConn{}}
	t.Cleanup(func() {
		for _, c := range e.conns {
			_ = c.Close()
		}
	})
	return e
}

// conn returns the client connection to a replica's gRPC address.
func (e *env) conn(addr string) *grpc.ClientConn {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.conns[addr]
	if !ok {
		var err error
		if c, err = grpcx.Dial(addr, ""); err != nil {
			e.t.Fatal(err)
		}
		e.conns[addr] = c
	}
	return c
}

// as is the call option that makes a call as p.
func (e *env) as(p authx.Principal) grpc.CallOption {
	tok, err := e.auth.Mint(p, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return grpc.PerRPCCredentials(authx.BearerToken(tok))
}

// retryable reports whether a failed call may succeed on another replica or a little later: the
// replica is gone or its servers behind are, or the call ran out of time.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.Canceled:
		return true
	}
	return false
}

// call makes one call to a service, as a client in front of its replicas would: each attempt
// within per, on the replicas in turn, until one answers or ctx ends. A retry carries the same
// request, so it has at most the effect of one.
func (e *env) call(ctx context.Context, service string, per time.Duration, fn func(ctx context.Context, c *grpc.ClientConn) error) error {
	addrs := e.st.ServiceAddrs(service)
	var err error
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, per)
		err = fn(actx, e.conn(addrs[attempt%len(addrs)]))
		cancel()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ledger records every call that returned OK: what must be in the stream and the views.
type ledger struct {
	mu       sync.Mutex
	raised   []string          // issues, in the order their raises returned
	acked    map[part]bool     // report-ins that returned OK
	resolved map[part]bool     // resolutions that returned OK
	byReq    map[string]string // raise request id -> issue
}

// part is one unit's part of an issue.
type part struct{ issue, unit string }

func newLedger() *ledger {
	return &ledger{acked: map[part]bool{}, resolved: map[part]bool{}, byReq: map[string]string{}}
}

func (l *ledger) raise(req, issue string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.byReq[req]; !ok {
		l.raised = append(l.raised, issue)
	}
	l.byReq[req] = issue
}

func (l *ledger) ack(p part)     { l.mu.Lock(); l.acked[p] = true; l.mu.Unlock() }
func (l *ledger) resolve(p part) { l.mu.Lock(); l.resolved[p] = true; l.mu.Unlock() }

func (l *ledger) counts() (raised, acked, resolved int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.raised), len(l.acked), len(l.resolved)
}

// issues returns the issues raised so far.
func (l *ledger) issues() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.raised)
}

// load is the steady work the fault tests run under: workers each raising issues one after
// another, reporting in for two thirds of them once routed and resolving half of those, and
// leaving a third alone to breach their report-in deadline.
type load struct {
	e          *env
	name       string
	grids      []string
	categories []string
	led        *ledger
	cancel     context.CancelFunc
	done       sync.WaitGroup
}

// loadWorkers is how many lifecycles run at once: a steady load that two shared cores carry
// beside eighteen processes.
const loadWorkers = 3

// routable returns the sample city's grids and the categories a rule routes (from the first
// grid), so that every issue raised in them is dispatched without a dispatcher.
func (e *env) routable() (grids, categories []string) {
	e.t.Helper()
	cat, err := catalog.Sample()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range cat.Areas() {
		if a.Level == catalog.LevelGrid {
			grids = append(grids, a.ID)
		}
	}
	for _, k := range cat.Categories() {
		var res *whistlev1.ExplainRouteResponse
		err := e.call(e.t.Context(), "routing", callTimeout, func(ctx context.Context, c *grpc.ClientConn) error {
			var err error
			res, err = whistlev1.NewRoutingServiceClient(c).ExplainRoute(ctx, &whistlev1.ExplainRouteRequest{
				GridId: grids[0], CategoryId: k.ID, Urgency: whistlev1.Urgency_URGENCY_NORMAL}, e.as(systemtest.Supervisor()))
			return err
		})
		if err != nil {
			e.t.Fatalf("explain the route of %s: %v", k.ID, err)
		}
		if res.GetOutcome() == "rules" {
			categories = append(categories, k.ID)
		}
	}
	if len(categories) == 0 {
		e.t.Fatal("no category is routed by a rule")
	}
	return grids, categories
}

// startLoad starts the load; stop ends it.
func (e *env) startLoad(name string) *load {
	e.t.Helper()
	ld := &load{e: e, name: name, led: newLedger()}
	ld.grids, ld.categories = e.routable()
	ctx, cancel := context.WithCancel(context.Background())
	ld.cancel = cancel
	for w := range loadWorkers {
		ld.done.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				ld.lifecycle(ctx, fmt.Sprintf("%s-w%d-%d", name, w, i), i)
			}
		})
	}
	return ld
}

// stop ends the load and waits for the calls in flight.
func (ld *load) stop() {
	ld.cancel()
	ld.done.Wait()
}

// raise raises an issue under request id req, retrying until it returns OK or ctx ends.
func (ld *load) raise(ctx context.Context, req string, i int, per time.Duration) (string, error) {
	grid := ld.grids[i%len(ld.grids)]
	var res *whistlev1.RaiseIssueResponse
	err := ld.e.call(ctx, "intake", per, func(ctx context.Context, c *grpc.ClientConn) error {
		var err error
		res, err = whistlev1.NewIntakeServiceClient(c).RaiseIssue(ctx, &whistlev1.RaiseIssueRequest{
			RequestId: req, GridId: grid, CategoryId: ld.categories[i%len(ld.categories)],
			Urgency: whistlev1.Urgency_URGENCY_NORMAL, Text: "under load: " + req,
		}, ld.e.as(systemtest.GridWorker(grid)))
		return err
	})
	if err != nil {
		return "", err
	}
	ld.led.raise(req, res.GetIssue().GetId())
	return res.GetIssue().GetId(), nil
}

// lifecycle runs one issue's life: raise; then, for two in three, report in for every part
// once routed, and for one in three resolve them too.
func (ld *load) lifecycle(ctx context.Context, req string, i int) {
	id, err := ld.raise(ctx, req, i, callTimeout)
	if err != nil || i%3 == 0 {
		return
	}
	units, err := ld.e.dispatched(ctx, id)
	if err != nil {
		return
	}
	for _, u := range units {
		if ld.e.acknowledge(ctx, ld.led, part{id, u}, callTimeout) != nil {
			return
		}
		if i%3 == 1 && ld.e.resolve(ctx, ld.led, part{id, u}, callTimeout) != nil {
			return
		}
	}
}

// dispatched waits until intake's view shows the issue routed and returns its units.
func (e *env) dispatched(ctx context.Context, id string) ([]string, error) {
	for {
		var res *whistlev1.GetIssueResponse
		err := e.call(ctx, "intake", callTimeout, func(ctx context.Context, c *grpc.ClientConn) error {
			var err error
			res, err = whistlev1.NewIntakeServiceClient(c).GetIssue(ctx, &whistlev1.GetIssueRequest{Id: id}, e.as(systemtest.Supervisor()))
			return err
		})
		if err != nil && status.Code(err) != codes.NotFound {
			return nil, err
		}
		var units []string
		for _, a := range res.GetIssue().GetAssignments() {
			units = append(units, a.GetUnitId())
		}
		if len(units) > 0 {
			return units, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// acknowledge reports in for a part as its unit's officer.
func (e *env) acknowledge(ctx context.Context, led *ledger, p part, per time.Duration) error {
	err := e.call(ctx, "department", per, func(ctx context.Context, c *grpc.ClientConn) error {
		_, err := whistlev1.NewDepartmentServiceClient(c).Acknowledge(ctx,
			&whistlev1.AcknowledgeRequest{IssueId: p.issue, UnitId: p.unit}, e.as(systemtest.Officer(p.unit)))
		return err
	})
	if err == nil {
		led.ack(p)
	}
	return err
}

// resolve resolves a part as its unit's officer.
func (e *env) resolve(ctx context.Context, led *ledger, p part, per time.Duration) error {
	err := e.call(ctx, "department", per, func(ctx context.Context, c *grpc.ClientConn) error {
		_, err := whistlev1.NewDepartmentServiceClient(c).Resolve(ctx,
			&whistlev1.ResolveRequest{IssueId: p.issue, UnitId: p.unit, Note: "fixed"}, e.as(systemtest.Officer(p.unit)))
		return err
	})
	if err == nil {
		led.resolve(p)
	}
	return err
}

// recovery is how long after a fault each kind of call first returned OK again.
type recovery struct{ raise, ack, resolve time.Duration }

func (r recovery) worst() time.Duration { return max(r.raise, r.ack, r.resolve) }

// probe is an issue routed before the fault, kept for the probe to report in for and resolve.
type probe struct{ issue, unit string }

// prepareProbe raises an issue and waits until it is routed, for probeRecovery.
func (ld *load) prepareProbe(t *testing.T) probe {
	t.Helper()
	id, err := ld.raise(t.Context(), ld.name+"-probe", 1, callTimeout)
	if err != nil {
		t.Fatalf("raise the probe's issue: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	units, err := ld.e.dispatched(ctx, id)
	if err != nil {
		t.Fatalf("the probe's issue was not routed: %v", err)
	}
	return probe{id, units[0]}
}

// probeRecovery measures, from the fault at, how long until a raise, a report-in and a
// resolution each return OK again: each tried at once and again until it does, every attempt
// within probeTimeout, the raise and the report-in side by side and the resolution after the
// report-in.
func (ld *load) probeRecovery(t *testing.T, at time.Time, p probe) recovery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var r recovery
	var wg sync.WaitGroup
	var raiseErr, ackErr, resolveErr error
	wg.Go(func() {
		_, raiseErr = ld.raise(ctx, ld.name+"-probe-after", 2, probeTimeout)
		r.raise = time.Since(at)
	})
	wg.Go(func() {
		pt := part{p.issue, p.unit}
		if ackErr = ld.e.acknowledge(ctx, ld.led, pt, probeTimeout); ackErr != nil {
			return
		}
		r.ack = time.Since(at)
		resolveErr = ld.e.resolve(ctx, ld.led, pt, probeTimeout)
		r.resolve = time.Since(at)
	})
	wg.Wait()
	if err := errors.Join(raiseErr, ackErr, resolveErr); err != nil {
		t.Fatalf("the services did not answer again after the fault: %v", err)
	}
	return r
}

// report prints the recovery as the test's log and on stdout, in one line a script can read.
func report(t *testing.T, fault string, r recovery) {
	t.Helper()
	line := fmt.Sprintf("whistle-recovery fault=%s seconds=%.3f raise=%.3f acknowledge=%.3f resolve=%.3f",
		fault, r.worst().Seconds(), r.raise.Seconds(), r.ack.Seconds(), r.resolve.Seconds())
	t.Log(line)
	fmt.Println(line)
	if r.worst() > maxRecovery {
		t.Errorf("the services answered again %s after the fault, more than %s", r.worst().Round(time.Millisecond), maxRecovery)
	}
}

// warmUp waits until the load has completed some of each kind of call.
func (ld *load) warmUp(t *testing.T) {
	t.Helper()
	wait.For(t, time.Minute, 100*time.Millisecond, func() error {
		if r, a, s := ld.led.counts(); r < 6 || a < 3 || s < 1 {
			return fmt.Errorf("%d raises, %d report-ins, %d resolutions so far", r, a, s)
		}
		return nil
	})
}

// jsz is what a NATS node's /jsz says of its meta group.
type jsz struct {
	Meta struct {
		Leader string `json:"leader"`
	} `json:"meta_cluster"`
}

// metaLeader asks a running NATS node which node leads the JetStream meta group.
func (e *env) metaLeader(node cluster.Proc) (string, error) {
	res, err := http.Get("http://" + node.Monitor + "/jsz")
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var j jsz
	if err := json.NewDecoder(res.Body).Decode(&j); err != nil {
		return "", err
	}
	return j.Meta.Leader, nil
}

// logTails logs what each service process said last that was not routine, for a test that failed.
func logTails(t *testing.T, dir string) {
	st, err := cluster.Load(dir)
	if err != nil {
		return
	}
	for _, p := range st.Services {
		b, err := os.ReadFile(p.Log())
		if err != nil {
			continue
		}
		var kept []string
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.HasPrefix(line, "whistle:") {
				kept = append(kept, line)
			}
		}
		if len(kept) > 40 {
			kept = kept[len(kept)-40:]
		}
		t.Logf("%s said:\n%s", p.Name, strings.Join(kept, ""))
	}
}
