package escalation_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/grpcapi"
)

// breachWatch is one open WatchBreaches.
type breachWatch struct {
	stream whistlev1.EscalationService_WatchBreachesClient
	cut    context.CancelFunc
	// from is the position the watch named in its headers.
	from string
}

// watchBreaches opens a watch as p on in after the position after ("" for from now on), and waits
// until it listens.
func (h *harness) watchBreaches(in *instance, p authx.Principal, req *whistlev1.WatchBreachesRequest) *breachWatch {
	h.T.Helper()
	ctx, cancel := context.WithCancel(h.T.Context())
	h.T.Cleanup(cancel)
	stream, err := h.client(in, p).WatchBreaches(ctx, req)
	if err != nil {
		h.T.Fatal(err)
	}
	md, err := stream.Header()
	if err != nil {
		h.T.Fatal(err)
	}
	w := &breachWatch{stream: stream, cut: cancel}
	if v := md.Get(grpcapi.WatchPositionHeader); len(v) == 1 {
		w.from = v[0]
	}
	return w
}

// next receives the watch's next breach and its position.
func (w *breachWatch) next(t *testing.T) (issueID, position string) {
	t.Helper()
	msg, err := w.stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return msg.GetBreach().GetIssueId(), msg.GetPosition()
}

// breach makes the issue's report-in deadline, after after, pass, and waits until it is breached.
func (h *harness) breach(issueID, grid, dept string, after time.Duration) {
	h.T.Helper()
	deadline := h.raiseAndRoute(issueID, grid, "water-supply", dept, after, farOff)
	h.waitTimer(issueID, dept, "report-in", true)
	h.pass(deadline, 1)
	h.waitBreaches(issueID, 1)
}

func TestABreachWatchCutAndResumedFromItsLastPositionMissesNothingAndRepeatsNothing(t *testing.T) {
	h := newHarness(t)
	in := h.run()
	xinhua := authx.Principal{Subject: "sup-xinhua", Role: authx.RoleSupervisor, Scope: "xinhua"}
	first := h.watchBreaches(in, xinhua, &whistlev1.WatchBreachesRequest{})
	officer := h.watchBreaches(in, waterOfficer, &whistlev1.WatchBreachesRequest{}) // stays open throughout
	if first.from == "" {
		t.Fatalf("a new watch names no position it follows from")
	}
	ids := make([]string, 6)
	for i := range ids {
		ids[i] = issue(t, i)
	}
	// Breaches in xinhua (the supervisor's street) and in hexi (not theirs), one after another.
	h.breach(ids[0], "xinhua-taoyuan-01", "water", soon)
	h.breach(ids[1], "hexi-binjiang-01", "water", 2*soon)
	got, cutAt := first.next(t)
	if got != ids[0] {
		t.Fatalf("the watch of xinhua received %s's breach, want %s's", got, ids[0])
	}
	first.cut() // the connection drops

	h.breach(ids[2], "xinhua-hebin-02", "water", 3*soon)
	h.breach(ids[3], "hexi-binjiang-02", "water", 4*soon)

	resumed := h.watchBreaches(in, xinhua, &whistlev1.WatchBreachesRequest{After: cutAt})
	if resumed.from != cutAt {
		t.Fatalf("the resumed watch follows from %q, want %q", resumed.from, cutAt)
	}
	if got, _ := resumed.next(t); got != ids[2] {
		t.Fatalf("the resumed watch received %s's breach first, want %s's, recorded while it was cut", got, ids[2])
	}
	// The next breach is the next thing it receives: nothing was sent twice in between.
	h.breach(ids[4], "xinhua-taoyuan-03", "water", 5*soon)
	if got, _ := resumed.next(t); got != ids[4] {
		t.Fatalf("the resumed watch then received %s's breach, want %s's", got, ids[4])
	}

	// Resumed from where the first watch began, before it received anything: every breach of
	// xinhua since, in order.
	fromStart := h.watchBreaches(in, xinhua, &whistlev1.WatchBreachesRequest{After: first.from})
	var all []string
	for range 3 {
		id, _ := fromStart.next(t)
		all = append(all, id)
	}
	if want := []string{ids[0], ids[2], ids[4]}; !slices.Equal(all, want) {
		t.Fatalf("the watch resumed from the first one's start received %v, want %v", all, want)
	}

	// The duty officer's watch, open throughout, follows their department's feed: every
	// breach of water, wherever it is.
	all = nil
	for range 5 {
		id, _ := officer.next(t)
		all = append(all, id)
	}
	if want := ids[:5]; !slices.Equal(all, want) {
		t.Fatalf("the water officer's watch received %v, want %v", all, want)
	}
}

func TestAWatchAfterAPositionItCannotResumeFromIsRefused(t *testing.T) {
	h := newHarness(t)
	in := h.run()
	sup := h.client(in, citySupervisor)
	tests := []struct {
		name string
		req  *whistlev1.WatchBreachesRequest
		want codes.Code
	}{
		{"not a position", &whistlev1.WatchBreachesRequest{After: "yesterday"}, codes.InvalidArgument},
		{"a position and a sequence", &whistlev1.WatchBreachesRequest{After: "1-0", AfterSeq: 1}, codes.InvalidArgument},
		{"a position the feed never held", &whistlev1.WatchBreachesRequest{After: "1-0"}, codes.OutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			stream, err := sup.WatchBreaches(ctx, tt.req)
			if err == nil {
				_, err = stream.Recv()
			}
			if status.Code(err) != tt.want {
				t.Fatalf("%v: %v, want %v", tt.req, err, tt.want)
			}
		})
	}
}
