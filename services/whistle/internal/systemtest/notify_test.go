package systemtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/notify"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

const webhookSecret = "the-webhook-secret-of-the-tests!"

// hook is a webhook receiver: it answers the attempts at each notification with codes in turn (the
// last from then on), or holds every request until the test ends, and records what it received.
type hook struct {
	codes []int
	hang  chan struct{} // when set, every request waits for it to close

	mu   sync.Mutex
	seen []hookRequest
}

type hookRequest struct {
	delivery string
	code     int
	sigErr   error
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sigErr := notify.Verify([]byte(webhookSecret), r.Header.Get(notify.HeaderSignature), body, time.Now(), notify.DefaultTolerance)
	delivery := r.Header.Get(notify.HeaderDelivery)
	h.mu.Lock()
	code := http.StatusOK
	if len(h.codes) > 0 {
		before := 0
		for _, seen := range h.seen {
			if seen.delivery == delivery {
				before++
			}
		}
		code = h.codes[min(before, len(h.codes)-1)]
	}
	h.seen = append(h.seen, hookRequest{delivery: delivery, code: code, sigErr: sigErr})
	h.mu.Unlock()
	if h.hang != nil {
		<-h.hang
		return
	}
	w.WriteHeader(code)
}

func (h *hook) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.seen...)
}

// serveHook serves h for the test; a hanging one is released before the server closes.
func serveHook(t *testing.T, h *hook) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if h.hang != nil {
		t.Cleanup(func() { close(h.hang) }) // runs first: cleanups run last-in first-out
	}
	return srv.URL + "/whistle"
}

// withWebhook turns notifications on, posting to url.
func withWebhook(url string, timeout, backoff time.Duration) Option {
	return func(o *system.Options) {
		o.Notify = notify.Config{Webhook: notify.WebhookConfig{URL: url, Secret: webhookSecret, Timeout: timeout},
			BaseBackoff: backoff, MaxBackoff: backoff}
	}
}

// notifications lists an issue's notifications to its raiser as a city supervisor.
func notifications(t *testing.T, c Clients, issue string, status whistlev1.NotificationStatus) []*whistlev1.Notification {
	t.Helper()
	res, err := c.Department.ListNotifications(t.Context(), &whistlev1.ListNotificationsRequest{IssueId: issue, Status: status, PageSize: 200})
	if err != nil {
		t.Fatalf("list notifications: %v", err)
	}
	var out []*whistlev1.Notification
	for _, n := range res.GetNotifications() {
		if n.GetRecipientRole() == string(notify.RoleRaiser) {
			out = append(out, n)
		}
	}
	return out
}

// work raises an issue in a grid and has every unit it is dispatched to report in and resolve.
func work(t *testing.T, sys *system.System, super Clients, key, grid string) string {
	t.Helper()
	issue := raise(t, Dial(t, sys, GridWorker(grid)), key, grid, "blocked-drain")
	dispatched := waitForStatus(t, super, []string{issue.GetId()}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[issue.GetId()]
	for _, a := range dispatched.GetAssignments() {
		officer := Dial(t, sys, Officer(a.GetUnitId()))
		if _, err := officer.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: issue.GetId(), UnitId: a.GetUnitId()}); err != nil {
			t.Fatalf("acknowledge %s for %s: %v", issue.GetId(), a.GetUnitId(), err)
		}
		if _, err := officer.Department.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: issue.GetId(), UnitId: a.GetUnitId(), Note: "cleared"}); err != nil {
			t.Fatalf("resolve %s for %s: %v", issue.GetId(), a.GetUnitId(), err)
		}
	}
	waitForStatus(t, super, []string{issue.GetId()}, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	return issue.GetId()
}

func TestAWebhookThatHangsHoldsUpNoRaiseReportInOrResolution(t *testing.T) {
	h := &hook{hang: make(chan struct{})}
	// Each attempt may hang for a minute: every sender is held for the whole test.
	sys := Start(t, t.TempDir(), clock.NewFake(Epoch), withWebhook(serveHook(t, h), time.Minute, time.Second))
	super := Dial(t, sys, Supervisor())

	began := time.Now()
	const issues = 6
	ids := make([]string, issues)
	for i := range issues {
		ids[i] = work(t, sys, super, fmt.Sprintf("hang-%d", i), "xinhua-taoyuan-01")
	}
	took := time.Since(began)
	Settle(t, sys)
	t.Logf("%d issues raised, routed, reported in and resolved in %s while the webhook hung", issues, took.Round(time.Millisecond))

	// Every sender is stuck in a request, and what the lifecycles owe the raiser waits, queued.
	if got := len(h.requests()); got != notify.DefaultSenders {
		t.Errorf("the webhook holds %d requests, want one per sender (%d)", got, notify.DefaultSenders)
	}
	wait.For(t, waitTotal, 50*time.Millisecond, func() error {
		for _, id := range ids {
			// routed, then each unit's report-in and resolution, all to the raiser
			pending := notifications(t, super, id, whistlev1.NotificationStatus_NOTIFICATION_STATUS_PENDING)
			if len(pending) < 3 {
				return fmt.Errorf("issue %s has %d notifications pending, want at least 3", id, len(pending))
			}
			for _, n := range pending {
				if n.GetRecipientId() != GridWorker("xinhua-taoyuan-01").Subject {
					t.Fatalf("notification %s is for %s, want the raiser", n.GetId(), n.GetRecipientId())
				}
			}
		}
		return nil
	})
	if got := notifications(t, super, "", whistlev1.NotificationStatus_NOTIFICATION_STATUS_DELIVERED); len(got) != 0 {
		t.Errorf("%d notifications delivered through a webhook that never answers", len(got))
	}
}

func TestARaiserIsToldOfEachChangeOnceAcrossARestartOfWhistleThoughTheWebhookFailsTwiceEachTime(t *testing.T) {
	h := &hook{codes: []int{http.StatusServiceUnavailable, http.StatusInternalServerError, http.StatusOK}}
	url := serveHook(t, h)
	dir := t.TempDir()
	opt := withWebhook(url, 5*time.Second, 20*time.Millisecond)
	sys := Start(t, dir, clock.Real(), opt)
	super := Dial(t, sys, Supervisor())
	id := raise(t, Dial(t, sys, GridWorker("xinhua-taoyuan-01")), "twice", "xinhua-taoyuan-01", "blocked-drain").GetId()
	dispatched := waitForStatus(t, super, []string{id}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)[id]

	var routed *whistlev1.Notification
	wait.For(t, waitTotal, 20*time.Millisecond, func() error {
		got := notifications(t, super, id, whistlev1.NotificationStatus_NOTIFICATION_STATUS_DELIVERED)
		if len(got) != 1 {
			return fmt.Errorf("%d notifications delivered", len(got))
		}
		routed = got[0]
		return nil
	})
	if routed.GetEventKind() != "routed" || len(routed.GetAttempts()) != 3 {
		t.Fatalf("the routing's notification: %v", routed)
	}
	for i, want := range []int32{503, 500, 200} {
		if a := routed.GetAttempts()[i]; a.GetCode() != want || a.GetAttempt() != int32(i+1) {
			t.Errorf("attempt %d: %v, want the answer %d", i+1, a, want)
		}
	}
	for i := 1; i < 3; i++ {
		gap := routed.GetAttempts()[i].GetAt().AsTime().Sub(routed.GetAttempts()[i-1].GetAt().AsTime())
		if gap < 10*time.Millisecond { // half the back-off at least
			t.Errorf("attempt %d came %s after the one before, inside its back-off", i+1, gap)
		}
	}

	// Whistle stops and starts again on the same folder: the notifier's consumer resumes and
	// nothing sent is sent again; what happens next is told once.
	Stop(t, sys)
	sys = Start(t, dir, clock.Real(), opt)
	super = Dial(t, sys, Supervisor())
	unit := dispatched.GetAssignments()[0].GetUnitId()
	if _, err := Dial(t, sys, Officer(unit)).Department.Acknowledge(t.Context(),
		&whistlev1.AcknowledgeRequest{IssueId: id, UnitId: unit}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, waitTotal, 20*time.Millisecond, func() error {
		if got := notifications(t, super, id, whistlev1.NotificationStatus_NOTIFICATION_STATUS_DELIVERED); len(got) != 2 {
			return fmt.Errorf("%d notifications delivered, want 2", len(got))
		}
		return nil
	})
	Settle(t, sys)
	deliveredTimes := map[string]int{}
	var toRaiser []hookRequest
	for _, r := range h.requests() {
		if !strings.Contains(r.delivery, "."+string(notify.RoleRaiser)+".") {
			continue // an officer's, when the department pushes the assignment to one
		}
		toRaiser = append(toRaiser, r)
		if r.sigErr != nil {
			t.Errorf("request for %s: %v", r.delivery, r.sigErr)
		}
		if r.code == http.StatusOK {
			deliveredTimes[r.delivery]++
		}
	}
	if len(deliveredTimes) != 2 || deliveredTimes[routed.GetId()] != 1 {
		t.Errorf("delivered %v, want the routing's and the report-in's once each", deliveredTimes)
	}
	for nid, n := range deliveredTimes {
		if n != 1 {
			t.Errorf("%s delivered %d times", nid, n)
		}
	}
	if len(toRaiser) != 6 {
		t.Errorf("%d requests to the raiser, want 6: three attempts at the routing's and at the report-in's", len(toRaiser))
	}

	resp, err := http.Get("http://" + sys.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`whistle_notify_attempts_total{`, `outcome="retry"`, `whistle_notify_deliveries_total{`,
		`outcome="delivered"`, "whistle_notify_queue_depth", "whistle_notify_queued_total{", "whistle_notify_attempt_duration_seconds_bucket{"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics shows no %s", want)
		}
	}
}

func TestAWebhookThatCouldNeverDeliverStopsTheStartNamingWhy(t *testing.T) {
	for _, tc := range []struct {
		name, url, secret, want string
	}{
		{"a URL that is not one", "not a url", webhookSecret, "http or https"},
		{"a URL with no host", "https://", webhookSecret, "no host"},
		{"no secret", "https://hooks.example.org/whistle", "", "WHISTLE_WEBHOOK_SECRET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options(t.TempDir(), clock.Real())
			opts.Notify = notify.Config{Webhook: notify.WebhookConfig{URL: tc.url, Secret: tc.secret}}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			sys, err := system.Start(ctx, opts)
			if err == nil {
				Stop(t, sys)
				t.Fatal("the system started")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "notifications") {
				t.Fatalf("the start failed with %q, want it to name %q", err, tc.want)
			}
		})
	}
}

func TestTheOfficerEachSummonedUnitIsPushedToIsToldOnceWithTheCaseAndTheUnit(t *testing.T) {
	h := &hook{}
	sys := Start(t, t.TempDir(), clock.NewFake(Epoch), withWebhook(serveHook(t, h), 5*time.Second, time.Second))
	super := Dial(t, sys, Supervisor())
	id := raise(t, Dial(t, sys, GridWorker("xinhua-taoyuan-01")), "pushed", "xinhua-taoyuan-01", "blocked-drain").GetId()

	// The officers the department pushed the assignments to, as the stream says.
	want := map[string]string{} // notification id -> unit
	wait.For(t, waitTotal, 20*time.Millisecond, func() error {
		recs, err := sys.Deps().Log.Read(t.Context(), id, 0)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			for _, p := range rec.Event.GetPushed().GetPushes() {
				want[notify.ID(id, rec.Seq, notify.RoleOfficer, p.GetOfficerId())] = p.GetUnitId()
			}
		}
		if len(want) == 0 {
			return fmt.Errorf("no push of %s yet", id)
		}
		return nil
	})
	var told []*whistlev1.Notification
	wait.For(t, waitTotal, 20*time.Millisecond, func() error {
		res, err := super.Department.ListNotifications(t.Context(), &whistlev1.ListNotificationsRequest{IssueId: id,
			Status: whistlev1.NotificationStatus_NOTIFICATION_STATUS_DELIVERED})
		if err != nil {
			return err
		}
		told = told[:0]
		for _, n := range res.GetNotifications() {
			if n.GetRecipientRole() == string(notify.RoleOfficer) {
				told = append(told, n)
			}
		}
		if len(told) != len(want) {
			return fmt.Errorf("%d officers told, want %d", len(told), len(want))
		}
		return nil
	})
	for _, n := range told {
		unit, ok := want[n.GetId()]
		if !ok || n.GetEventKind() != "pushed" || !strings.Contains(n.GetText(), id) || !strings.Contains(n.GetTextEn(), unit) {
			t.Errorf("officer notification %v, want one of %v naming the case and the unit", n, want)
		}
	}
	Settle(t, sys)
	seen := map[string]int{}
	for _, r := range h.requests() {
		seen[r.delivery]++
	}
	for nid := range want {
		if seen[nid] != 1 {
			t.Errorf("%s posted %d times, want once", nid, seen[nid])
		}
	}
}
