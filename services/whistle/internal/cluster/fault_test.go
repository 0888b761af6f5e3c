package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/cluster"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/systemtest"
)

// underLoad runs the load, has fault strike once it is warm, measures how soon the services
// answer again, lets the load run on for afterFault, and then checks what every fault test
// checks (see check). It returns the cluster, still up, for what a test checks besides.
func underLoad(t *testing.T, name string, fault func(e *env)) *env {
	e := startCluster(t)
	ld := e.startLoad(name)
	defer ld.stop()
	p := ld.prepareProbe(t)
	ld.warmUp(t)
	at := time.Now()
	fault(e)
	r := ld.probeRecovery(t, at, p)
	report(t, name, r)
	// The load goes on until it has done more of each call since, so that calls made while the
	// cluster heals are checked too.
	r0, a0, s0 := ld.led.counts()
	wait.For(t, time.Minute, 100*time.Millisecond, func() error {
		if r, a, s := ld.led.counts(); r < r0+6 || a < a0+3 || s < s0+1 {
			return fmt.Errorf("%d raises, %d report-ins, %d resolutions since the recovery", r-r0, a-a0, s-s0)
		}
		return nil
	})
	ld.stop()
	e.check(ld.led, time.Now())
	return e
}

// TestKillingANATSNodeUnderLoadLosesNothingAndTheServicesAnswerWithinFiveSeconds kills -9 a
// NATS node that leads neither the WHISTLE stream nor the JetStream meta group: its clients
// reconnect to the others, and the consumers and key-value bucket it led elect new leaders. A
// leader's death costs an election on nats-server's own fixed timeouts (4 to 9 s), which no
// option shortens; docs/architecture.md says so.
func TestKillingANATSNodeUnderLoadLosesNothingAndTheServicesAnswerWithinFiveSeconds(t *testing.T) {
	underLoad(t, "nats-node", func(e *env) {
		info, err := e.log.StreamInfo(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		meta, err := e.metaLeader(e.st.NATS[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range e.st.NATS {
			if n.Name != info.Cluster.Leader && n.Name != meta {
				t.Logf("killing %s (stream leader %s, meta leader %s)", n.Name, info.Cluster.Leader, meta)
				if err := e.st.Kill(n); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		t.Fatalf("every node leads something: stream %s, meta %s", info.Cluster.Leader, meta)
	})
}

// TestKillingAReplicaOfEachServiceUnderLoadLosesNothingAndTheServicesAnswerWithinFiveSeconds
// kills -9 the first replica of every service at once: the calls go on to the second, and the
// partitions the dead ones owned (escalation's timers among them) pass to the survivors.
func TestKillingAReplicaOfEachServiceUnderLoadLosesNothingAndTheServicesAnswerWithinFiveSeconds(t *testing.T) {
	e := underLoad(t, "service-replicas", func(e *env) {
		for _, name := range system.Names {
			p, ok := e.st.Proc(name + "-1")
			if !ok {
				t.Fatalf("no process %s-1", name)
			}
			if err := e.st.Kill(p); err != nil {
				t.Fatal(err)
			}
		}
	})
	// Each gateway is given every replica of every service: with the first of each dead, it still
	// answers, through the others.
	for _, addr := range e.st.ServiceAddrs(system.GatewayName) {
		for _, path := range []string{"/healthz", system.Open311Path + "services.json"} {
			wait.For(t, 5*time.Second, 100*time.Millisecond, func() error {
				res, err := http.Get("http://" + addr + path)
				if err != nil {
					return err
				}
				_ = res.Body.Close()
				if res.StatusCode != http.StatusOK {
					return fmt.Errorf("the gateway %s answers %s on %s with a replica of each service dead", addr, res.Status, path)
				}
				return nil
			})
		}
	}
}

// TestKillingARedisMasterUnderLoadLosesNothingAndTheServicesAnswerWithinFiveSeconds kills -9 a
// Redis master: its replica is promoted after the cluster's node timeout, and the services'
// clients learn the new layout.
func TestKillingARedisMasterUnderLoadLosesNothingAndTheServicesAnswerWithinFiveSeconds(t *testing.T) {
	underLoad(t, "redis-master", func(e *env) {
		master := e.st.Redis[0]
		if err := e.st.Kill(master); err != nil {
			t.Fatal(err)
		}
		// The test goes on with the load meanwhile; the promotion is checked at the end.
		t.Cleanup(func() {
			replica := e.st.AdminClient(e.st.Redis[cluster.RedisMasters].Addr)
			defer replica.Close()
			role, err := replica.Do(context.Background(), "ROLE").Slice()
			if err != nil || len(role) == 0 || role[0] != "master" {
				t.Errorf("%s was not promoted when its master died: ROLE %v (%v)", e.st.Redis[cluster.RedisMasters].Name, role, err)
			}
		})
	})
}

// check waits until every service has applied every event and every deadline owed has fired,
// then checks that no call that returned OK was lost (its event is in the stream and in intake's
// view), that no event was stored or applied twice (the stream holds one event per call, and
// each issue's timeline lists the stream's events of it, once each), and that every deadline
// fired exactly once (the stream's breaches are those an auditor finds owed, and escalation lists
// each of them once).
func (e *env) check(led *ledger, stopped time.Time) {
	t := e.t
	t.Helper()
	issues := led.issues()
	// Every report-in deadline of these issues lies within reportIn of its raise, all raised
	// before the load stopped: once the stream's clock is past that, every breach is owed.
	wait.For(t, settleTimeout, 200*time.Millisecond, func() error {
		now, err := e.log.Now(t.Context())
		if err != nil {
			return err
		}
		if now.Before(stopped.Add(reportIn)) {
			return fmt.Errorf("the stream's clock reads %s, before the last report-in deadline", now.Format(time.TimeOnly))
		}
		return systemtest.AuditLog(t, e.log, issues).Agree()
	})
	// The breaches are the last events: once they are stored, every service must apply
	// everything before a view is read.
	wait.For(t, settleTimeout, 200*time.Millisecond, func() error {
		for _, name := range system.Names {
			n, err := e.log.Pending(t.Context(), name)
			if err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%s has %d events to apply", name, n)
			}
		}
		return nil
	})
	raisedAt := map[string]int{}
	for _, id := range issues {
		recs, err := e.log.Read(t.Context(), id, 0)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		var seqs []uint64
		for _, r := range recs {
			seqs = append(seqs, r.Seq)
			switch p := r.Event.GetPayload().(type) {
			case *whistlev1.Event_Raised:
				count["raised"]++
			case *whistlev1.Event_Acknowledged:
				count["acknowledged "+assignment.UnitOf(p.Acknowledged.GetDepartmentId(), p.Acknowledged.GetUnitId())]++
			case *whistlev1.Event_Resolved:
				count["resolved "+assignment.UnitOf(p.Resolved.GetDepartmentId(), p.Resolved.GetUnitId())]++
			}
		}
		raisedAt[id] = count["raised"]
		for what, n := range count {
			if n != 1 {
				t.Errorf("issue %s: the stream holds %d events %s", id, n, what)
			}
		}
		for p := range led.acked {
			if p.issue == id && count["acknowledged "+p.unit] == 0 {
				t.Errorf("issue %s: the report-in of %s returned OK and the stream has no such event", id, p.unit)
			}
		}
		for p := range led.resolved {
			if p.issue == id && count["resolved "+p.unit] == 0 {
				t.Errorf("issue %s: the resolution of %s returned OK and the stream has no such event", id, p.unit)
			}
		}

		// Intake's view lists the stream's events of the issue, once each, and shows every
		// report-in and resolution that returned OK.
		var res *whistlev1.GetIssueResponse
		if err := e.call(t.Context(), "intake", callTimeout, func(ctx context.Context, c *grpc.ClientConn) error {
			var err error
			res, err = whistlev1.NewIntakeServiceClient(c).GetIssue(ctx, &whistlev1.GetIssueRequest{Id: id}, e.as(systemtest.Supervisor()))
			return err
		}); err != nil {
			t.Errorf("issue %s returned OK when raised, and intake cannot show it: %v", id, err)
			continue
		}
		var shown []uint64
		for _, entry := range res.GetTimeline() {
			shown = append(shown, entry.GetSeq())
		}
		if !slices.Equal(shown, seqs) {
			t.Errorf("issue %s: intake's timeline lists the events %v, the stream holds %v", id, shown, seqs)
		}
		status := map[string]whistlev1.AssignmentStatus{}
		for _, a := range res.GetIssue().GetAssignments() {
			status[a.GetUnitId()] = a.GetStatus()
		}
		for p := range led.acked {
			if p.issue == id && status[p.unit] != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED &&
				status[p.unit] != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED {
				t.Errorf("issue %s: %s reported in, and intake shows its part %s", id, p.unit, status[p.unit])
			}
		}
		for p := range led.resolved {
			if p.issue == id && status[p.unit] != whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED {
				t.Errorf("issue %s: %s resolved, and intake shows its part %s", id, p.unit, status[p.unit])
			}
		}
	}
	for id, n := range raisedAt {
		if n == 0 {
			t.Errorf("issue %s: its raise returned OK and the stream holds no raised event", id)
		}
	}

	// Escalation lists each breach the stream owes once, of the issues raised and of any whose
	// raise was stored while its call failed (when the load stopped, say).
	seen := map[string]int{}
	audited := slices.Clone(issues)
	listed := 0
	token := ""
	for {
		var res *whistlev1.ListBreachesResponse
		if err := e.call(t.Context(), "escalation", callTimeout, func(ctx context.Context, c *grpc.ClientConn) error {
			var err error
			res, err = whistlev1.NewEscalationServiceClient(c).ListBreaches(ctx,
				&whistlev1.ListBreachesRequest{PageSize: 100, PageToken: token}, e.as(systemtest.Supervisor()))
			return err
		}); err != nil {
			t.Fatalf("list breaches: %v", err)
		}
		for _, b := range res.GetBreaches() {
			seen[strings.Join([]string{b.GetIssueId(), b.GetUnitId(), b.GetKind().String()}, " ")]++
			listed++
			if !slices.Contains(audited, b.GetIssueId()) {
				audited = append(audited, b.GetIssueId())
			}
		}
		if token = res.GetNextPageToken(); token == "" {
			break
		}
	}
	for b, n := range seen {
		if n != 1 {
			t.Errorf("escalation lists the breach %s %d times", b, n)
		}
	}
	verdicts := systemtest.AuditLog(t, e.log, audited)
	if err := verdicts.Agree(); err != nil {
		t.Error(err)
	}
	owed := verdicts.Breaches()
	if listed != owed {
		t.Errorf("escalation lists %d breaches, the stream owes %d", listed, owed)
	}
	raised, acked, resolved := led.counts()
	t.Logf("checked %d raises, %d report-ins, %d resolutions and %d breaches", raised, acked, resolved, owed)
}

// TestTheClusterStartsAnswersEveryReplicaAndStopsLeavingNothingRunning starts the local cluster,
// raises an issue through each intake replica and reads it through every other, and stops the
// cluster, after which none of its processes runs.
func TestTheClusterStartsAnswersEveryReplicaAndStopsLeavingNothingRunning(t *testing.T) {
	e := startCluster(t)
	worker := e.as(systemtest.GridWorker("xinhua-taoyuan-01"))
	var ids []string
	for i, addr := range e.st.ServiceAddrs("intake") {
		res, err := whistlev1.NewIntakeServiceClient(e.conn(addr)).RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{
			RequestId: fmt.Sprintf("smoke-%d", i), GridId: "xinhua-taoyuan-01", CategoryId: "blocked-drain", Text: "a smoke test"}, worker)
		if err != nil {
			t.Fatalf("raise through %s: %v", addr, err)
		}
		ids = append(ids, res.GetIssue().GetId())
	}
	for _, addr := range e.st.ServiceAddrs("intake") {
		for _, id := range ids {
			wait.For(t, time.Minute, 50*time.Millisecond, func() error {
				_, err := whistlev1.NewIntakeServiceClient(e.conn(addr)).GetIssue(t.Context(), &whistlev1.GetIssueRequest{Id: id}, worker)
				return err
			})
		}
	}
	// Each gateway reads every issue through the services' replicas, as Open311 answers it.
	gateways := e.st.ServiceAddrs(system.GatewayName)
	if len(gateways) == 0 {
		t.Fatal("the cluster runs no gateway")
	}
	for _, addr := range gateways {
		for _, id := range ids {
			res, err := http.Get("http://" + addr + system.Open311Path + "requests/" + id + ".json")
			if err != nil {
				t.Fatalf("GET through the gateway %s: %v", addr, err)
			}
			body, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"service_request_id":"`+id+`"`) {
				t.Errorf("the gateway %s answers %s for %s: %s", addr, res.Status, id, body)
			}
		}
	}
	if err := cluster.Down(e.st.Dir, nil); err != nil {
		t.Fatal(err)
	}
	procs := slices.Concat(e.st.NATS, e.st.Redis, e.st.Services)
	for _, p := range procs {
		if alive(p.PID) {
			t.Errorf("%s (pid %d) still runs after cluster down", p.Name, p.PID)
		}
	}
}

// alive reports whether a process runs (a zombie awaiting its parent does not count).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}
