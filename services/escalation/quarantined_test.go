package escalation_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// publishGarbage stores bytes that are no event on the issue's subject of kind, straight to the
// stream as a broken writer would, and returns the sequence the stream stored them at.
func (h *harness) publishGarbage(issueID, kind string) uint64 {
	h.T.Helper()
	js, err := jetstream.New(h.Deps.NATS)
	if err != nil {
		h.T.Fatal(err)
	}
	ack, err := js.Publish(h.T.Context(), eventlog.Subject(issueID, kind), []byte("\xffnot an event"))
	if err != nil {
		h.T.Fatalf("publish garbage on %s: %v", issueID, err)
	}
	return ack.Sequence
}

// quarantinedIssues lists the quarantined events p sees, page after page, and returns them.
func (h *harness) quarantinedIssues(in *instance, p authx.Principal, size int32) ([]*whistlev1.QuarantinedEvent, error) {
	var all []*whistlev1.QuarantinedEvent
	token := ""
	for {
		resp, err := h.client(in, p).ListQuarantined(context.Background(), &whistlev1.ListQuarantinedRequest{PageSize: size, PageToken: token})
		if err != nil {
			return nil, err
		}
		all = append(all, resp.GetEvents()...)
		if token = resp.GetNextPageToken(); token == "" {
			return all, nil
		}
	}
}

// issuesOf is the issue of each event, in order.
func issuesOf(evs []*whistlev1.QuarantinedEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.GetIssueId())
	}
	return out
}

func TestAnEventEscalationCannotApplyIsListedAsQuarantinedForSupervisorsWhoseAreaHoldsItsIssue(t *testing.T) {
	h := newHarness(t)
	in := h.run()
	xinhua, hexi, unknown := issue(t, 1), issue(t, 2), issue(t, 3)
	h.raiseAndRoute(xinhua, "xinhua-taoyuan-01", "water-supply", "water", 30*time.Minute, 24*time.Hour)
	h.raiseAndRoute(hexi, "hexi-binjiang-01", "power-outage", "power", 30*time.Minute, 24*time.Hour)
	h.Settled("escalation")
	before := time.Now().Add(-time.Minute)
	// One at a time, so that the dead letters are filed in this order: the consumer's workers
	// take different issues in parallel.
	xinhuaSeq := h.publishGarbage(xinhua, "acknowledged")
	h.Settled("escalation")
	hexiSeq := h.publishGarbage(hexi, "acknowledged")
	h.Settled("escalation")
	h.publishGarbage(unknown, "acknowledged") // an issue escalation never saw raised: its grid is unknown
	h.Settled("escalation")

	city, err := h.quarantinedIssues(in, citySupervisor, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := issuesOf(city), []string{unknown, hexi, xinhua}; !slices.Equal(got, want) {
		t.Fatalf("a city supervisor lists the quarantined events of %v, want %v, newest first", got, want)
	}
	ev := city[2]
	if ev.GetService() != "escalation" || ev.GetSubject() != eventlog.Subject(xinhua, "acknowledged") || ev.GetSeq() != xinhuaSeq ||
		ev.GetDeliveries() != 1 || ev.GetReason() == "" || ev.GetGridId() != "xinhua-taoyuan-01" {
		t.Errorf("the quarantined event of %s reads %v, want service escalation, subject whistle.%s.acknowledged, seq %d, 1 delivery, a reason and grid xinhua-taoyuan-01",
			xinhua, ev, xinhua, xinhuaSeq)
	}
	if at := ev.GetStoredAt().AsTime(); at.Before(before) || at.After(time.Now()) {
		t.Errorf("stored_at %v is not when the stream stored the event", at)
	}
	if city[1].GetSeq() != hexiSeq || city[1].GetGridId() != "hexi-binjiang-01" {
		t.Errorf("the quarantined event of %s reads %v, want seq %d in grid hexi-binjiang-01", hexi, city[1], hexiSeq)
	}
	if city[0].GetGridId() != "" {
		t.Errorf("the event of an issue escalation never saw raised names grid %q", city[0].GetGridId())
	}

	paged, err := h.quarantinedIssues(in, citySupervisor, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := issuesOf(paged); !slices.Equal(got, issuesOf(city)) {
		t.Errorf("pages of one follow one another as %v, want %v", got, issuesOf(city))
	}

	for _, tt := range []struct {
		name  string
		scope string
		want  []string
	}{
		{"a supervisor of the issue's street sees it", "xinhua", []string{xinhua}},
		{"a supervisor of the issue's grid sees it", "xinhua-taoyuan-01", []string{xinhua}},
		{"a supervisor of another street sees only that street's", "hexi", []string{hexi}},
		{"a supervisor of a street with no quarantined issue sees none", "dongfeng", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.quarantinedIssues(in, authx.Principal{Subject: "sup", Role: authx.RoleSupervisor, Scope: tt.scope}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(issuesOf(got), tt.want) {
				t.Fatalf("a supervisor of %s sees %v, want %v", tt.scope, issuesOf(got), tt.want)
			}
		})
	}

	for _, tt := range []struct {
		name   string
		caller authx.Principal
		req    *whistlev1.ListQuarantinedRequest
		code   codes.Code
		field  string
	}{
		{"an officer is refused", waterOfficer, &whistlev1.ListQuarantinedRequest{}, codes.PermissionDenied, ""},
		{"a dispatcher is refused", authx.Principal{Subject: "d", Role: authx.RoleDispatcher, Scope: "city"}, &whistlev1.ListQuarantinedRequest{}, codes.PermissionDenied, ""},
		{"a grid worker is refused", authx.Principal{Subject: "g", Role: authx.RoleGridWorker, Scope: "xinhua-taoyuan-01"}, &whistlev1.ListQuarantinedRequest{}, codes.PermissionDenied, ""},
		{"a page size over the limit is refused", citySupervisor, &whistlev1.ListQuarantinedRequest{PageSize: 201}, codes.InvalidArgument, "page_size"},
		{"a negative page size is refused", citySupervisor, &whistlev1.ListQuarantinedRequest{PageSize: -1}, codes.InvalidArgument, "page_size"},
		{"a forged page token is refused", citySupervisor, &whistlev1.ListQuarantinedRequest{PageToken: "not-a-token"}, codes.InvalidArgument, "page_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client(in, tt.caller).ListQuarantined(context.Background(), tt.req)
			if status.Code(err) != tt.code || !strings.HasPrefix(status.Convert(err).Message(), tt.field) {
				t.Fatalf("got %v, want %v naming %q", err, tt.code, tt.field)
			}
		})
	}
}
