package notify

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/redisdoc"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
)

// Name is the notifier's durable consumer (one per partition, "<Name>-<p>") and the prefix of its
// Redis keys. The department service runs it, since it owns the officers; its keys sit apart from
// the department's views ("department:"), which a replay deletes and rebuilds: deliveries are a
// record of messages sent, not a function of the stream, and a replay must neither lose the
// pending ones nor send anything again.
const Name = "department-notify"

// Sending defaults; each can be set in Config.
const (
	// DefaultMaxAttempts is how often a delivery is tried before it is failed.
	DefaultMaxAttempts = 8
	// DefaultBaseBackoff is the wait after the first failed attempt; each later one doubles it.
	DefaultBaseBackoff = time.Second
	// DefaultMaxBackoff caps the wait between attempts.
	DefaultMaxBackoff = 5 * time.Minute
	// DefaultSenders is how many deliveries are sent at once.
	DefaultSenders = 4
	// poll is how often an idle sender looks at the queue, for deliveries another replica queued.
	poll = time.Second
)

// Config is the notifier's configuration: where to post, and how hard to try.
type Config struct {
	Webhook WebhookConfig
	// MaxAttempts bounds the attempts at one delivery; zero means DefaultMaxAttempts.
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the waits between attempts: attempt n failed waits between
	// half and all of BaseBackoff·2^(n-1), at most MaxBackoff (exponential, with jitter). Zero means
	// the defaults.
	BaseBackoff, MaxBackoff time.Duration
	// Senders is how many deliveries are sent at once; zero means DefaultSenders.
	Senders int
}

// Check says what is wrong with the configuration, naming the setting.
func (c Config) Check() error {
	if err := c.Webhook.Check(); err != nil {
		return err
	}
	if c.MaxAttempts < 0 || c.BaseBackoff < 0 || c.MaxBackoff < 0 || c.Senders < 0 {
		return errors.New("notify: attempts, back-off and senders must not be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = DefaultBaseBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Senders == 0 {
		c.Senders = DefaultSenders
	}
	if c.Webhook.Timeout == 0 {
		c.Webhook.Timeout = DefaultTimeout
	}
	return c
}

// lease is how long a claimed delivery is left to its sender before another may take it: longer
// than an attempt may last.
func (c Config) lease() time.Duration { return 2*c.Webhook.Timeout + 5*time.Second }

// issue is what the notifier keeps of each issue: who raised it, where, and the officer named on
// each unit's part.
type issue struct {
	ID         string           `json:"id"`
	LastSeq    uint64           `json:"last_seq"`
	Quarantine *quarantine.Mark `json:"quarantine,omitempty"`
	Raiser     string           `json:"raiser,omitempty"`
	Grid       string           `json:"grid,omitempty"`
	// Officers are, by unit, the officer its part was pushed or handed over to: whom a
	// supervisor's urge or extension decision on the part is told to.
	Officers map[string]string `json:"officers,omitempty"`
}

// Position exposes the fields the projection engine moves.
func (s *issue) Position() (*uint64, **quarantine.Mark) { return &s.LastSeq, &s.Quarantine }

// fold takes the raiser and the grid from the raise, and each unit's officer from the pushes and
// hand-overs; every other event only moves the position.
func fold(_ context.Context, st *issue, rec eventlog.Record, _ redis.Pipeliner) error {
	name := func(dept, unit, officer string) {
		if st.Officers == nil {
			st.Officers = map[string]string{}
		}
		st.Officers[cmp.Or(unit, dept)] = officer
	}
	switch p := rec.Event.GetPayload().(type) {
	case *whistlev1.Event_Raised:
		st.Raiser, st.Grid = rec.Event.GetActor().GetSubject(), p.Raised.GetGridId()
	case *whistlev1.Event_Pushed:
		for _, push := range p.Pushed.GetPushes() {
			name(push.GetDepartmentId(), push.GetUnitId(), push.GetOfficerId())
		}
	case *whistlev1.Event_HandedOver:
		name(p.HandedOver.GetDepartmentId(), p.HandedOver.GetUnitId(), p.HandedOver.GetToOfficerId())
	}
	return nil
}

// Notifications follows the stream and queues a delivery for each person an event concerns, and
// sends what is queued. Its consumer only writes to Redis, so nothing a receiver does (hang, fail,
// answer slowly) reaches the event path.
type Notifications struct {
	log      *eventlog.Log
	issues   *redisdoc.Store[*issue]
	outbox   *outbox
	notifier Notifier
	clock    clock.Clock
	logger   *slog.Logger
	cfg      Config
	// wake tells the senders that this process queued something.
	wake chan struct{}
	// jitter draws the random part of a back-off; tests may fix it.
	jitter func(n int64) int64
	// poll is how long an idle sender waits before it looks at the queue again.
	poll time.Duration
}

// New returns the notifier on d, sending through notifier; a nil notifier means the webhook cfg
// describes. It refuses a configuration that could never deliver.
func New(d platform.Deps, cfg Config, notifier Notifier) (*Notifications, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if notifier == nil {
		w, err := NewWebhook(cfg.Webhook, d.Clock)
		if err != nil {
			return nil, err
		}
		notifier = w
	}
	return &Notifications{
		log: d.Log,
		issues: &redisdoc.Store[*issue]{Service: Name, RDB: d.Redis,
			Empty: func(id string) *issue { return &issue{ID: id} }, Fold: fold},
		outbox:   &outbox{name: Name, rdb: d.Redis},
		notifier: notifier, clock: d.Clock, logger: d.Logger, cfg: cfg,
		wake: make(chan struct{}, 1), jitter: randInt63n, poll: poll,
	}, nil
}

// Run follows the stream with the notifier's own durable consumer and sends what is queued, until
// ctx ends.
func (n *Notifications) Run(ctx context.Context) error {
	reg, err := observeDepth(n.outbox)
	if err != nil {
		return err
	}
	defer func() { _ = reg.Unregister() }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { n.send(ctx) })
	err = n.log.Consume(ctx, eventlog.ConsumerConfig{Durable: Name, Logger: n.logger,
		ReactsTo: slices.Concat(RaiserKinds, EscalationKinds, []string{"pushed"}, OfficerKinds)}, n.issues, n.react)
	cancel()
	wg.Wait()
	return err
}

// react queues the notifications of one event the projection applied. It only writes to Redis.
func (n *Notifications) react(ctx context.Context, rec eventlog.Record) error {
	st, err := n.issues.Latest(ctx, rec.Event.GetIssueId())
	if err != nil {
		return err
	}
	queued := false
	for _, d := range n.deliveries(st, rec) {
		fresh, err := n.outbox.enqueue(ctx, d)
		if err != nil {
			return err // tried again by the consumer; what was queued stays queued once
		}
		if fresh {
			queued = true
			enqueuedCount.Add(ctx, 1, otelx.Attributes("role", string(d.Role), "event", d.Kind))
		}
	}
	if queued {
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// deliveries are the notifications rec owes: one to each officer its pushes name, one to the
// officer named on the part a supervisor urged or decided an extension of (and for an urge one to
// the unit's head it names), or one to the issue's raiser when it is a change they see and not
// their own doing.
func (n *Notifications) deliveries(st *issue, rec eventlog.Record) []Delivery {
	ev := rec.Event
	kind := eventlog.Kind(ev)
	now := n.clock.Now() // queued and due now, by the sender's clock
	make1 := func(role Role, to, unit string) (Delivery, bool) {
		zh, en, ok := texts(ev, rec.Time, kind, role, unit)
		if !ok {
			return Delivery{}, false
		}
		return Delivery{Notification: Notification{ID: ID(ev.GetIssueId(), rec.Seq, role, to), Recipient: to, Role: role,
			IssueID: ev.GetIssueId(), Kind: kind, Seq: rec.Seq, Text: zh, TextEn: en, OccurredAt: rec.Time},
			Grid: st.Grid, Status: StatusPending, CreatedAt: now}, true
	}
	var out []Delivery
	switch {
	case kind == "pushed":
		seen := map[string]bool{}
		for _, p := range ev.GetPushed().GetPushes() {
			if p.GetOfficerId() == "" || seen[p.GetOfficerId()] {
				continue // no one named: the unit's inbox alone holds it
			}
			seen[p.GetOfficerId()] = true
			if d, ok := make1(RoleOfficer, p.GetOfficerId(), p.GetUnitId()); ok {
				out = append(out, d)
			}
		}
	case slices.Contains(EscalationKinds, kind):
		person := cmp.Or(ev.GetReminded().GetPersonId(), ev.GetEscalated().GetPersonId())
		if person == "" {
			return nil // nobody to tell: the unit has no roster, or no level found anyone
		}
		if d, ok := make1(RoleEscalation, person, cmp.Or(ev.GetReminded().GetUnitId(), ev.GetEscalated().GetUnitId())); ok {
			out = append(out, d)
		}
	case slices.Contains(OfficerKinds, kind):
		// The officer named on the part, and for an urge the unit's head it names; with nobody
		// named, the unit's inbox alone shows it.
		unit := supervisedUnit(ev)
		officer, head := st.Officers[unit], ev.GetUrged().GetHeadId()
		for _, to := range []struct {
			role   Role
			person string
		}{{RoleOfficer, officer}, {RoleHead, head}} {
			if to.person == "" || to.person == ev.GetActor().GetSubject() || (to.role == RoleHead && to.person == officer) {
				continue // nobody, the supervisor themself, or a head who holds the part and is told once
			}
			if d, ok := make1(to.role, to.person, unit); ok {
				out = append(out, d)
			}
		}
	case slices.Contains(RaiserKinds, kind):
		if st.Raiser == "" || st.Raiser == ev.GetActor().GetSubject() {
			return nil // raised before the notifier could see it, or the raiser's own doing
		}
		if d, ok := make1(RoleRaiser, st.Raiser, ""); ok {
			out = append(out, d)
		}
	}
	return out
}

// List returns up to limit deliveries that f selects, newest first, each with its attempts.
func (n *Notifications) List(ctx context.Context, f Filter, limit int) ([]Delivery, error) {
	return n.outbox.list(ctx, f, limit)
}

// Depth is how many deliveries are pending.
func (n *Notifications) Depth(ctx context.Context) (int64, error) { return n.outbox.depth(ctx) }

// Lister lists deliveries from Redis without running a notifier: what a process serving the API
// reads, with notifications configured there or not.
func Lister(rdb redis.UniversalClient) func(ctx context.Context, f Filter, limit int) ([]Delivery, error) {
	o := &outbox{name: Name, rdb: rdb}
	return o.list
}

var (
	meter          = otel.Meter("github.com/whistle-dispatch/whistle/services/internal/notify")
	enqueuedCount  metric.Int64Counter
	attemptCount   metric.Int64Counter
	deliveredCount metric.Int64Counter
	attemptTime    metric.Float64Histogram
	depthGauge     metric.Int64ObservableGauge
)

func init() {
	enqueuedCount, _ = meter.Int64Counter("whistle.notify.queued",
		metric.WithDescription("Notifications queued for delivery, by recipient role and event kind; a redelivered event queues none."))
	attemptCount, _ = meter.Int64Counter("whistle.notify.attempts",
		metric.WithDescription("Attempts at delivering a notification, by outcome: delivered, retry (it may pass), refused (for good)."))
	deliveredCount, _ = meter.Int64Counter("whistle.notify.deliveries",
		metric.WithDescription("Notifications that reached their end, by outcome: delivered, or failed (refused, or every attempt failed)."))
	attemptTime, _ = meter.Float64Histogram("whistle.notify.attempt.duration", metric.WithUnit("s"),
		metric.WithDescription("How long one attempt at a delivery took, by outcome."))
	depthGauge, _ = meter.Int64ObservableGauge("whistle.notify.queue.depth",
		metric.WithDescription("Notifications pending: queued, being sent, or waiting to be tried again."))
}

// observeDepth reports the queue's depth in /metrics while the notifier runs.
func observeDepth(o *outbox) (metric.Registration, error) {
	return meter.RegisterCallback(func(ctx context.Context, obs metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		n, err := o.depth(ctx)
		if err != nil {
			return nil // an unknown depth is left out rather than reported as none
		}
		obs.ObserveInt64(depthGauge, n)
		return nil
	}, depthGauge)
}
