package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/internal/servicetest"
)

const secret = "a-secret-of-thirty-two-bytes-ok!"

// receiver is a webhook receiver that answers each request with the next of its codes (the last
// one from then on), verifying every signature on the test's clock.
type receiver struct {
	t     *testing.T
	now   func() time.Time
	codes []int
	// hang, when set, holds every request until the test ends.
	hang bool

	mu       sync.Mutex
	requests []request
}

type request struct {
	delivery string
	payload  Payload
	sigErr   error
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var p Payload
	_ = json.Unmarshal(body, &p)
	r.mu.Lock()
	r.requests = append(r.requests, request{delivery: req.Header.Get(HeaderDelivery), payload: p,
		sigErr: Verify([]byte(secret), req.Header.Get(HeaderSignature), body, r.now(), DefaultTolerance)})
	code := r.codes[min(len(r.requests), len(r.codes))-1]
	r.mu.Unlock()
	if r.hang {
		<-r.t.Context().Done()
		return
	}
	w.WriteHeader(code)
}

func (r *receiver) received() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

// env is a notifier on real NATS and Redis, with the test's fake clock, posting to a receiver.
type env struct {
	*servicetest.Env
	rcv  *receiver
	srv  *httptest.Server
	cfg  Config
	n    *Notifications
	stop func()
}

func newEnv(t *testing.T, codes ...int) *env {
	t.Helper()
	e := &env{Env: servicetest.NewEnv(t, servicetest.LifecycleStart)}
	e.rcv = &receiver{t: t, now: e.Clock.Now, codes: codes}
	e.srv = httptest.NewServer(e.rcv)
	t.Cleanup(e.srv.Close)
	e.cfg = Config{Webhook: WebhookConfig{URL: e.srv.URL + "/hook", Secret: secret, Timeout: 2 * time.Second},
		BaseBackoff: 40 * time.Second, MaxAttempts: 5}
	return e
}

// start runs a notifier, as a new process would.
func (e *env) start() {
	e.T.Helper()
	n, err := New(e.Deps, e.cfg, nil)
	if err != nil {
		e.T.Fatal(err)
	}
	n.poll = time.Millisecond // on the fake clock: the sender looks at every step the test makes
	e.n = n
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	e.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			e.T.Errorf("run: %v", err)
		}
	})
	e.T.Cleanup(e.stop)
}

// raise appends a raise by gw-1 in xinhua-taoyuan-01.
func (e *env) raise(key string) string {
	id := casenum.FromKey(key)
	e.Append(&whistlev1.Event{IssueId: id, Actor: &whistlev1.Actor{Subject: "gw-1", Role: string(authx.RoleGridWorker)},
		Payload: &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{RequestId: key, GridId: "xinhua-taoyuan-01",
			CategoryId: "blocked-drain", Text: "water on the road"}}})
	return id
}

// push appends the department's push of the issue's water unit to officers.
func (e *env) push(id string, officers ...string) uint64 {
	var pushes []*whistlev1.Push
	for _, o := range officers {
		pushes = append(pushes, &whistlev1.Push{DepartmentId: "water", UnitId: "water", OfficerId: o,
			Reason: whistlev1.PushReason_PUSH_REASON_ON_DUTY})
	}
	return e.Append(&whistlev1.Event{IssueId: id, Actor: &whistlev1.Actor{Subject: "department", Role: "service"},
		Payload: &whistlev1.Event_Pushed{Pushed: &whistlev1.AssignmentsPushed{Pushes: pushes, RosterVersion: "r1"}}})
}

// deliveries lists every delivery.
func (e *env) deliveries(f Filter) []Delivery {
	e.T.Helper()
	ds, err := Lister(e.Deps.Redis)(e.T.Context(), f, 1000)
	if err != nil {
		e.T.Fatal(err)
	}
	return ds
}

// delivery waits until the delivery with id has n attempts, and returns it.
func (e *env) delivery(id string, n int) Delivery {
	e.T.Helper()
	var got Delivery
	wait.For(e.T, 10*time.Second, 5*time.Millisecond, func() error {
		d, err := e.n.outbox.get(e.T.Context(), id)
		if err != nil {
			return err
		}
		if len(d.Attempts) < n {
			e.Clock.Advance(time.Millisecond) // the sender looks again at each step
			return fmt.Errorf("%d attempts, want %d", len(d.Attempts), n)
		}
		got = d
		return nil
	})
	return got
}

func TestAWebhookThatFailsTwiceDeliversOnTheThirdAttemptAfterItsBackOffWithEveryAttemptRecorded(t *testing.T) {
	e := newEnv(t, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusOK)
	e.start()
	id := e.raise("backoff")
	seq := e.push(id, "water-officer-7")
	nid := ID(id, seq, RoleOfficer, "water-officer-7")

	first := e.delivery(nid, 1)
	if first.Status != StatusPending || first.Attempts[0].Code != 503 || first.Attempts[0].Error == "" {
		t.Fatalf("after the first attempt: %+v", first)
	}
	// Attempt n failed waits between half and all of base·2^(n-1), on the sender's clock.
	checkWait := func(d Delivery, n int) {
		t.Helper()
		step := e.cfg.BaseBackoff << (n - 1)
		if got := d.NextAt.Sub(d.Attempts[n-1].At); got < step/2 || got > step {
			t.Fatalf("after attempt %d the next is due in %s, want between %s and %s", n, got, step/2, step)
		}
	}
	checkWait(first, 1)
	// The clock is moved to a millisecond before the attempt is due and then on a millisecond at a
	// time, the sender looking at the queue at each: it tries again only once it is due.
	e.Clock.Set(first.NextAt.Add(-time.Millisecond))
	second := e.delivery(nid, 2)
	if second.Attempts[1].Code != 502 || second.Status != StatusPending || second.Attempts[1].At.Before(first.NextAt) {
		t.Fatalf("after the second attempt, due at %s: %+v", first.NextAt, second)
	}
	checkWait(second, 2)
	e.Clock.Set(second.NextAt.Add(-time.Millisecond))
	third := e.delivery(nid, 3)
	if third.Attempts[2].At.Before(second.NextAt) {
		t.Fatalf("the third attempt at %s, due at %s", third.Attempts[2].At, second.NextAt)
	}
	if third.Status != StatusDelivered || third.Attempts[2].Code != 200 || third.Attempts[2].Error != "" || !third.NextAt.IsZero() {
		t.Fatalf("after the third attempt: %+v", third)
	}
	for i, a := range third.Attempts {
		if a.N != i+1 || a.Duration <= 0 {
			t.Errorf("attempt %d recorded as %+v", i+1, a)
		}
	}
	reqs := e.rcv.received()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.sigErr != nil {
			t.Errorf("request %d: %v", i+1, r.sigErr)
		}
		if r.delivery != nid || r.payload.ID != nid {
			t.Errorf("request %d carries delivery %q and id %q, want %q", i+1, r.delivery, r.payload.ID, nid)
		}
		want := Payload{ID: nid, Recipient: Recipient{ID: "water-officer-7", Role: RoleOfficer}, IssueID: id,
			Event: EventRef{Kind: "pushed", Seq: seq}}
		got := r.payload
		got.Text, got.OccurredAt = Texts{}, time.Time{}
		if got != want || !strings.Contains(r.payload.Text.ZH, id) || !strings.Contains(r.payload.Text.EN, id) {
			t.Errorf("request %d posted %+v", i+1, r.payload)
		}
	}
}

func TestEachEventIsNotifiedOncePerRecipientAcrossRedeliveryAndARestart(t *testing.T) {
	e := newEnv(t, http.StatusOK)
	e.start()
	id := e.raise("once")
	pushed := e.push(id, "water-officer-1", "water-officer-2", "water-officer-1")
	acked := e.Append(&whistlev1.Event{IssueId: id, Actor: &whistlev1.Actor{Subject: "water-officer-1", Role: string(authx.RoleOfficer)},
		Payload: &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "water", UnitId: "water"}}})
	want := map[string]bool{
		ID(id, pushed, RoleOfficer, "water-officer-1"): true,
		ID(id, pushed, RoleOfficer, "water-officer-2"): true,
		ID(id, acked, RoleRaiser, "gw-1"):              true,
	}
	delivered := func(n int) {
		t.Helper()
		wait.For(t, 10*time.Second, 5*time.Millisecond, func() error {
			ds := e.deliveries(Filter{IssueID: id, Status: StatusDelivered})
			if len(ds) != n {
				return fmt.Errorf("%d delivered, want %d", len(ds), n)
			}
			return nil
		})
	}
	delivered(3)

	// The process stops, and its consumer is made again from the first event: every event comes
	// again, and the deliveries already queued queue nothing.
	e.stop()
	if err := e.Deps.Log.DeleteConsumer(t.Context(), Name); err != nil {
		t.Fatal(err)
	}
	e.start()
	e.Settled(Name)
	resolved := e.Append(&whistlev1.Event{IssueId: id, Actor: &whistlev1.Actor{Subject: "water-officer-1", Role: string(authx.RoleOfficer)},
		Payload: &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "water", UnitId: "water", Note: "cleared"}}})
	want[ID(id, resolved, RoleRaiser, "gw-1")] = true
	delivered(4)
	e.Settled(Name)

	seen := map[string]int{}
	for _, r := range e.rcv.received() {
		seen[r.delivery]++
	}
	for nid := range want {
		if seen[nid] != 1 {
			t.Errorf("%s received %d times, want once", nid, seen[nid])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("received %v, want exactly %v", seen, want)
	}
	if depth, err := e.n.Depth(t.Context()); err != nil || depth != 0 {
		t.Errorf("queue depth %d (%v), want 0", depth, err)
	}
}

func TestTheRaiserIsNotToldOfTheirOwnDoingNorOfWhatStaysInsideTheDepartment(t *testing.T) {
	e := newEnv(t, http.StatusOK)
	e.start()
	id := e.raise("own")
	gw := &whistlev1.Actor{Subject: "gw-1", Role: string(authx.RoleGridWorker)}
	e.Append(&whistlev1.Event{IssueId: id, Actor: gw, Payload: &whistlev1.Event_Verified{Verified: &whistlev1.IssueVerified{}}})
	e.Append(&whistlev1.Event{IssueId: id, Actor: &whistlev1.Actor{Subject: "water-officer-1"},
		Payload: &whistlev1.Event_Noted{Noted: &whistlev1.ProgressNoted{DepartmentId: "water", Note: "on it"}}})
	e.push(id) // nobody on duty
	closed := e.Append(&whistlev1.Event{IssueId: id, Actor: &whistlev1.Actor{Subject: "intake", Role: "service"},
		Payload: &whistlev1.Event_Closed{Closed: &whistlev1.IssueClosed{}}})
	e.Settled(Name)
	ds := e.deliveries(Filter{IssueID: id})
	if len(ds) != 1 || ds[0].ID != ID(id, closed, RoleRaiser, "gw-1") {
		t.Fatalf("deliveries %+v, want only the closing's to the raiser", ds)
	}
}

func TestAnUrgeAndAnExtensionDecisionAreToldToTheOfficerNamedOnThePartAndAnUrgeToTheHeadItNames(t *testing.T) {
	e := newEnv(t, http.StatusOK)
	e.start()
	id := e.raise("supervised")
	e.push(id, "water-officer-1")
	e.Append(&whistlev1.Event{IssueId: id, Actor: &whistlev1.Actor{Subject: "water-officer-1", Role: string(authx.RoleOfficer)},
		Payload: &whistlev1.Event_HandedOver{HandedOver: &whistlev1.AssignmentHandedOver{DepartmentId: "water", UnitId: "water",
			FromOfficerId: "water-officer-1", ToOfficerId: "water-officer-2"}}})
	sup := &whistlev1.Actor{Subject: "sup-city", Role: string(authx.RoleSupervisor), Scope: "city"}
	urged := e.Append(&whistlev1.Event{IssueId: id, Actor: sup, Payload: &whistlev1.Event_Urged{Urged: &whistlev1.IssueUrged{
		RequestId: "u1", DepartmentId: "water", UnitId: "water", Note: "the school opens on Monday", HeadId: "water-head"}}})
	decided := func(approved bool, deadline time.Time, reason string) uint64 {
		d := &whistlev1.ExtensionDecided{DepartmentId: "water", UnitId: "water", Kind: whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE,
			Approved: approved, Deadline: timestamppb.New(deadline), Reason: reason}
		if approved {
			d.Granted = timestamppb.New(deadline.Add(24 * time.Hour))
		}
		return e.Append(&whistlev1.Event{IssueId: id, Actor: sup, Payload: &whistlev1.Event_ExtensionDecided{ExtensionDecided: d}})
	}
	future := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	approved := decided(true, future, "")
	denied := decided(false, future, "the part is in stock")
	late := decided(true, time.Now().Add(-time.Hour), "")
	// A part nobody was named on: its head alone is told of the urge, and with no head its inbox
	// alone shows it; a head who holds the part is told once, as its officer.
	gas := e.Append(&whistlev1.Event{IssueId: id, Actor: sup, Payload: &whistlev1.Event_Urged{Urged: &whistlev1.IssueUrged{
		RequestId: "u2", DepartmentId: "gas", UnitId: "gas", Note: "and the gas", HeadId: "gas-head"}}})
	e.Append(&whistlev1.Event{IssueId: id, Actor: sup, Payload: &whistlev1.Event_Urged{Urged: &whistlev1.IssueUrged{
		RequestId: "u3", DepartmentId: "gas", UnitId: "gas", Note: "still the gas"}}})
	again := e.Append(&whistlev1.Event{IssueId: id, Actor: sup, Payload: &whistlev1.Event_Urged{Urged: &whistlev1.IssueUrged{
		RequestId: "u4", DepartmentId: "water", UnitId: "water", Note: "and today", HeadId: "water-officer-2"}}})
	e.Settled(Name)

	want := map[string]string{
		ID(id, urged, RoleOfficer, "water-officer-2"):    "the school opens on Monday",
		ID(id, urged, RoleHead, "water-head"):            "the school opens on Monday",
		ID(id, gas, RoleHead, "gas-head"):                "and the gas",
		ID(id, again, RoleOfficer, "water-officer-2"):    "and today",
		ID(id, approved, RoleOfficer, "water-officer-2"): "moved to " + future.Add(24*time.Hour).Format(time.RFC3339),
		ID(id, denied, RoleOfficer, "water-officer-2"):   "denied",
		ID(id, late, RoleOfficer, "water-officer-2"):     "too late",
	}
	got := map[string]string{}
	for _, d := range e.deliveries(Filter{IssueID: id}) {
		if d.Kind == "pushed" {
			continue
		}
		got[d.ID] = d.TextEn
	}
	if len(got) != len(want) {
		t.Fatalf("deliveries %v, want %v", got, want)
	}
	for nid, says := range want {
		if !strings.Contains(got[nid], says) {
			t.Errorf("%s reads %q, want it to say %q", nid, got[nid], says)
		}
	}
}

func TestARefusalIsFinalAndListsAsFailed(t *testing.T) {
	e := newEnv(t, http.StatusGone)
	e.start()
	id := e.raise("gone")
	seq := e.push(id, "water-officer-1")
	d := e.delivery(ID(id, seq, RoleOfficer, "water-officer-1"), 1)
	if d.Status != StatusFailed || len(d.Attempts) != 1 || d.Attempts[0].Code != 410 {
		t.Fatalf("delivery %+v, want failed after one attempt answered 410", d)
	}
	if got := e.deliveries(Filter{Status: StatusFailed}); len(got) != 1 {
		t.Fatalf("failed deliveries %+v, want 1", got)
	}
	if got := e.deliveries(Filter{Status: StatusPending}); len(got) != 0 {
		t.Fatalf("pending deliveries %+v, want none", got)
	}
}

func TestAConfigurationThatCouldNeverDeliverIsRefusedNamingWhy(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  WebhookConfig
		want string
	}{
		{"no URL", WebhookConfig{Secret: secret}, "URL is empty"},
		{"not a URL", WebhookConfig{URL: "::nope", Secret: secret}, "::nope"},
		{"another scheme", WebhookConfig{URL: "ftp://example.org/x", Secret: secret}, "http or https"},
		{"no host", WebhookConfig{URL: "http:///x", Secret: secret}, "no host"},
		{"no secret", WebhookConfig{URL: "https://example.org/x"}, "WHISTLE_WEBHOOK_SECRET"},
		{"a short secret", WebhookConfig{URL: "https://example.org/x", Secret: "short"}, "at least 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{Webhook: tc.cfg}.Check()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestASignatureVerifiesOnlyForItsBodyItsSecretAndItsTime(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"id":"x"}`)
	sig := Sign([]byte(secret), at, body)
	if err := Verify([]byte(secret), sig, body, at.Add(time.Minute), DefaultTolerance); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	for name, err := range map[string]error{
		"another body":   Verify([]byte(secret), sig, []byte(`{"id":"y"}`), at, DefaultTolerance),
		"another secret": Verify([]byte(secret+"x"), sig, body, at, DefaultTolerance),
		"too old":        Verify([]byte(secret), sig, body, at.Add(DefaultTolerance+time.Second), DefaultTolerance),
		"no header":      Verify([]byte(secret), "", body, at, DefaultTolerance),
	} {
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestTheBackOffGrowsWithinItsJitterUpToItsCap(t *testing.T) {
	n := &Notifications{cfg: Config{BaseBackoff: time.Second, MaxBackoff: 10 * time.Second}}
	for _, j := range []func(int64) int64{func(int64) int64 { return 0 }, func(m int64) int64 { return m - 1 }} {
		n.jitter = j
		for a, step := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
			if got := n.backoff(a + 1); got < step/2 || got > step {
				t.Errorf("attempt %d waits %s, want between %s and %s", a+1, got, step/2, step)
			}
		}
	}
}

func TestTheWebhookRetriesATimeoutWithoutNamingTheURLAndRefusesARedirect(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	moved := httptest.NewServer(http.RedirectHandler("http://example.org/elsewhere", http.StatusTemporaryRedirect))
	t.Cleanup(moved.Close)
	n := Notification{ID: "K7M3-QX9A.4.raiser.gw-1", IssueID: "K7M3-QX9A"}

	w, err := NewWebhook(WebhookConfig{URL: slow.URL + "/hook?token=do-not-show", Secret: secret, Timeout: 50 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, err := w.Notify(t.Context(), n)
	if err == nil || errors.Is(err, ErrRefused) || code != 0 || strings.Contains(err.Error(), "do-not-show") {
		t.Errorf("a receiver that hangs: code %d, error %v; want a retryable error without the URL", code, err)
	}
	w, err = NewWebhook(WebhookConfig{URL: moved.URL, Secret: secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := w.Notify(t.Context(), n); !errors.Is(err, ErrRefused) || code != http.StatusTemporaryRedirect {
		t.Errorf("a redirect: code %d, error %v; want it refused", code, err)
	}
}

func TestAFailedCheckOnSiteTellsTheRaiserWhereTheIssueGoesBack(t *testing.T) {
	ev := &whistlev1.Event{IssueId: "K7M3-QX9A", Payload: &whistlev1.Event_Verified{Verified: &whistlev1.IssueVerified{
		Passed: false, Reason: "still blocked", Reopened: &whistlev1.Dispatch{DepartmentId: "water", UnitId: "water-xinhua"}}}}
	zh, en, ok := texts(ev, time.Time{}, "verified", RoleRaiser, "")
	if !ok || !strings.Contains(zh, "water-xinhua") || !strings.Contains(en, "goes back to water-xinhua") {
		t.Fatalf("texts = %q, %q, %v", zh, en, ok)
	}
	ev.GetVerified().Passed = true
	if _, en, _ := texts(ev, time.Time{}, "verified", RoleRaiser, ""); !strings.Contains(en, "passed") {
		t.Fatalf("a passed check reads %q", en)
	}
}

func TestAReminderAndAChainStepTellThePersonTheyNameAndNobodyElse(t *testing.T) {
	e := newEnv(t, http.StatusOK)
	e.start()
	id := e.raise("chain")
	esc := &whistlev1.Actor{Subject: "escalation", Role: "service"}
	reminded := e.Append(&whistlev1.Event{IssueId: id, Actor: esc, Payload: &whistlev1.Event_Reminded{Reminded: &whistlev1.DeadlineReminded{
		DepartmentId: "water", UnitId: "water", Kind: whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN, Percent: 80, PersonId: "water-officer-1",
		Deadline: timestamppb.New(servicetest.LifecycleStart.Add(time.Hour))}}})
	escalated := e.Append(&whistlev1.Event{IssueId: id, Actor: esc, Payload: &whistlev1.Event_Escalated{Escalated: &whistlev1.BreachEscalated{
		DepartmentId: "water", UnitId: "water", Kind: whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, Level: 3, PersonId: "xinhua.supervisor",
		Target: whistlev1.EscalationTarget_ESCALATION_TARGET_STREET_SUPERVISOR, AreaId: "xinhua"}}})
	e.Append(&whistlev1.Event{IssueId: id, Actor: esc, Payload: &whistlev1.Event_Escalated{Escalated: &whistlev1.BreachEscalated{
		DepartmentId: "water", UnitId: "water", Kind: whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE, Level: 4}}}) // nobody left to tell
	e.Settled(Name)
	ds := e.deliveries(Filter{IssueID: id})
	got := map[string]string{}
	for _, d := range ds {
		got[d.ID] = d.TextEn
	}
	want := []string{ID(id, reminded, RoleEscalation, "water-officer-1"), ID(id, escalated, RoleEscalation, "xinhua.supervisor")}
	if len(got) != len(want) || got[want[0]] == "" || got[want[1]] == "" {
		t.Fatalf("deliveries %v, want %v", got, want)
	}
	if !strings.Contains(got[want[0]], "80% of the time to report in") || !strings.Contains(got[want[1]], "level 3") {
		t.Errorf("the texts say %v", got)
	}
}
