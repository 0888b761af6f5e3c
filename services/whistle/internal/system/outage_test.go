package system_test

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/systemtest"
)

// healthz returns the status code of the system's /healthz.
func healthz(addr string) (int, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func TestAnEventArrivingWhileRedisIsAwayIsRetriedNotDeadLetteredAndHealthzSaysNotReady(t *testing.T) {
	dir := t.TempDir()
	sys := systemtest.Start(t, dir, clock.NewFake(time.Now()))
	if code, err := healthz(sys.HTTPAddr()); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz = %d, %v before the outage; want 200", code, err)
	}
	pid, err := redisPID(t.Context(), sys)
	if err != nil {
		t.Fatal(err)
	}
	// Redis stops answering (the process is frozen, not dead, so nothing restarts it) while a
	// raise reaches the stream.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	id := casenum.FromKey("outage")
	raise := &whistlev1.Event{IssueId: id, Actor: &whistlev1.Actor{Subject: "gw", Role: "grid-worker"},
		Payload: &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{RequestId: "outage", GridId: "xinhua-taoyuan-01",
			CommunityId: "xinhua-taoyuan", StreetId: "xinhua", CategoryId: "noise", Text: "Loud at night"}}}
	raise.Id = id + ".0.raised"
	data, err := proto.Marshal(raise)
	if err != nil {
		t.Fatal(err)
	}
	systemtest.PublishAs(t, dir, sys, "intake", eventlog.Subject(id, "raised"), data)
	wait.For(t, 30*time.Second, 100*time.Millisecond, func() error {
		if code, err := healthz(sys.HTTPAddr()); err == nil && code == http.StatusOK {
			return fmt.Errorf("/healthz still answers 200 with Redis away")
		}
		return nil
	})

	resume()
	wait.For(t, 60*time.Second, 100*time.Millisecond, func() error {
		if code, err := healthz(sys.HTTPAddr()); err != nil || code != http.StatusOK {
			return fmt.Errorf("/healthz = %d, %v after Redis came back", code, err)
		}
		return nil
	})
	systemtest.Settle(t, sys)
	info, err := sys.Deps().Log.DeadLetters().Info(t.Context())
	if err != nil || info.State.Msgs != 0 {
		t.Fatalf("the dead-letter stream holds %d messages (%v); a failure that passes must never dead-letter", info.State.Msgs, err)
	}
	super := systemtest.Dial(t, sys, systemtest.Supervisor())
	if _, err := super.Intake.GetIssue(t.Context(), &whistlev1.GetIssueRequest{Id: id}); err != nil {
		t.Fatalf("the issue raised during the outage: %v", err)
	}
}
