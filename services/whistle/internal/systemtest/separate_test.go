package systemtest

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// TestTheServicesRunAsSeparateProcessesOnSharedNATSAndRedis runs each service as
// `whistle serve NAME` does, on one external NATS and Redis, with a replica of department,
// and works an issue through them, each call to the process that serves that API.
func TestTheServicesRunAsSeparateProcessesOnSharedNATSAndRedis(t *testing.T) {
	natsURL := natstest.RunServer(t).ClientURL()
	redisURL := redistest.Run(t).URL()
	keys := t.TempDir() // every process signs and checks tokens with the one key
	clk := clock.NewFake(Epoch)
	serve := func(name string) *system.System {
		opts := Options(keys, clk)
		opts.NATSURL, opts.RedisURL, opts.Services = natsURL, redisURL, []string{name}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		sys, err := system.Start(ctx, opts)
		if err != nil {
			t.Fatalf("serve %s: %v", name, err)
		}
		t.Cleanup(func() { Stop(t, sys) })
		return sys
	}
	intake, department := serve("intake"), serve("department")
	serve("routing")
	serve("department") // a second replica shares the consumer
	serve("escalation")

	worker := Dial(t, intake, GridWorker("dongfeng-jinqiao-01"))
	res, err := worker.Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{
		GridId: "dongfeng-jinqiao-01", CategoryId: "power-outage", Text: "No power in building 3 since noon",
	})
	if err != nil {
		t.Fatal(err)
	}
	id := res.GetIssue().GetId()
	issue := waitForStatus(t, worker, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[id]
	dept := issue.GetAssignments()[0].GetUnitId()

	officer := Dial(t, department, Officer(dept))
	if _, err := officer.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := officer.Department.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: id, Note: "Breaker reset"}); err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, worker, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	if _, err := worker.Department.ListInbox(t.Context(), &whistlev1.ListInboxRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("the intake process answered the department API with %v; each process serves only its own", err)
	}
}
