package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
)

// Status is where a delivery stands.
type Status string

// The statuses.
const (
	// StatusPending: queued, being sent, or waiting to be tried again.
	StatusPending Status = "pending"
	// StatusDelivered: the receiver accepted it.
	StatusDelivered Status = "delivered"
	// StatusFailed: the receiver refused it for good, or every attempt failed.
	StatusFailed Status = "failed"
)

// Attempt is one try at a delivery.
type Attempt struct {
	// N counts from 1.
	N int `json:"n"`
	// At is when it began, by the sender's clock.
	At time.Time `json:"at"`
	// Duration is how long it took, measured on the machine's monotonic clock.
	Duration time.Duration `json:"duration"`
	// Code is what the receiver answered (an HTTP status); 0 when no answer came.
	Code int `json:"code,omitempty"`
	// Error says why it failed; empty when it delivered.
	Error string `json:"error,omitempty"`
}

// Delivery is a notification with what became of it.
type Delivery struct {
	Notification
	// Grid is the issue's grid, so that a supervisor sees the deliveries of their area only.
	Grid      string    `json:"grid,omitempty"`
	Status    Status    `json:"status"`
	Attempts  []Attempt `json:"attempts,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// NextAt is when a pending delivery is tried next; zero once it is delivered or failed.
	NextAt time.Time `json:"next_at,omitzero"`
}

// Retention is how long a delivered or failed delivery stays listed. The stream keeps the events;
// this is only the record of the messages sent about them.
const Retention = 30 * 24 * time.Hour

// outbox is the deliveries in Redis, sharded like the stream by the issue's partition so that
// each shard's keys share one Redis Cluster hash tag ({p<n>}) and every script stays in one slot:
//
//	<name>:delivery:{p<n>}:<id>      the delivery, JSON
//	<name>:queue:{p<n>}              pending ids scored by when each is due (unix ms); a claimed
//	                                 one is moved to the end of its lease
//	<name>:by-issue:{p<n>}:<issue>   an issue's ids scored by creation (unix ms)
//	<name>:all:{p<n>}                every id scored by creation (unix ms)
type outbox struct {
	name string
	rdb  redis.UniversalClient
}

func (o *outbox) tag(issueID string) string {
	return eventlog.PartitionTag(eventlog.Partition(issueID))
}
func (o *outbox) docKey(issueID, id string) string {
	return o.name + ":delivery:" + o.tag(issueID) + ":" + id
}
func (o *outbox) queueKey(shard int) string {
	return o.name + ":queue:" + eventlog.PartitionTag(shard)
}
func (o *outbox) issueKey(issueID string) string {
	return o.name + ":by-issue:" + o.tag(issueID) + ":" + issueID
}
func (o *outbox) allKey(shard int) string { return o.name + ":all:" + eventlog.PartitionTag(shard) }

// issueOf is the issue a delivery id names: case numbers hold no dot (they are a subject's token).
func issueOf(id string) string {
	issue, _, _ := strings.Cut(id, ".")
	return issue
}

// enqueueScript stores a delivery only if its id was never stored, and then queues and lists it;
// so an event taken again (a redelivery, a restart) queues nothing twice. It also forgets, in the
// issue's shard, listings older than the retention.
var enqueueScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (tonumber(ARGV[4]) - tonumber(ARGV[5])))
return 1
`)

// enqueue stores and queues d, due now; it reports false when d's id was stored before.
func (o *outbox) enqueue(ctx context.Context, d Delivery) (bool, error) {
	raw, err := json.Marshal(d)
	if err != nil {
		return false, err
	}
	shard := eventlog.Partition(d.IssueID)
	created := d.CreatedAt.UnixMilli()
	n, err := enqueueScript.Run(ctx, o.rdb,
		[]string{o.docKey(d.IssueID, d.ID), o.queueKey(shard), o.issueKey(d.IssueID), o.allKey(shard)},
		raw, created, d.ID, created, Retention.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("notify: queue %s: %w", d.ID, err)
	}
	return n == 1, nil
}

// claimScript takes up to ARGV[3] ids due by ARGV[1] and moves each to ARGV[2], the end of the
// claimer's lease: another sender finds it due again only if this one never records the attempt.
var claimScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
`)

// claim takes up to limit deliveries of a shard that are due at now, for lease.
func (o *outbox) claim(ctx context.Context, shard int, now time.Time, lease time.Duration, limit int) ([]string, error) {
	return claimScript.Run(ctx, o.rdb, []string{o.queueKey(shard)},
		now.UnixMilli(), now.Add(lease).UnixMilli(), limit).StringSlice()
}

// saveScript writes a delivery after an attempt, and queues it at ARGV[2] or, when that is
// empty (it is done), takes it off the queue and lets it expire after the retention.
var saveScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
end
return 1
`)

// save writes d and queues it at d.NextAt, or takes it off the queue when it is done.
func (o *outbox) save(ctx context.Context, d Delivery) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return err
	}
	next := ""
	if d.Status == StatusPending {
		next = strconv.FormatInt(d.NextAt.UnixMilli(), 10)
	}
	return saveScript.Run(ctx, o.rdb, []string{o.docKey(d.IssueID, d.ID), o.queueKey(eventlog.Partition(d.IssueID))},
		raw, next, d.ID, Retention.Milliseconds()).Err()
}

// drop takes an id off its queue: its delivery is gone or done.
func (o *outbox) drop(ctx context.Context, id string) error {
	return o.rdb.ZRem(ctx, o.queueKey(eventlog.Partition(issueOf(id))), id).Err()
}

// errNoDelivery is what get returns for an id whose delivery Redis does not hold.
var errNoDelivery = errors.New("notify: no such delivery")

// get reads one delivery.
func (o *outbox) get(ctx context.Context, id string) (Delivery, error) {
	raw, err := o.rdb.Get(ctx, o.docKey(issueOf(id), id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Delivery{}, errNoDelivery
	}
	if err != nil {
		return Delivery{}, err
	}
	var d Delivery
	if err := json.Unmarshal(raw, &d); err != nil {
		return Delivery{}, fmt.Errorf("notify: delivery %s: %w", id, err)
	}
	return d, nil
}

// nextDue is when the earliest queued delivery is due, and false when none is queued.
func (o *outbox) nextDue(ctx context.Context) (time.Time, bool, error) {
	cmds := make([]*redis.ZSliceCmd, eventlog.Partitions)
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for shard := range eventlog.Partitions {
			cmds[shard] = p.ZRangeWithScores(ctx, o.queueKey(shard), 0, 0)
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, err
	}
	var first time.Time
	found := false
	for _, c := range cmds {
		for _, z := range c.Val() {
			at := time.UnixMilli(int64(z.Score))
			if !found || at.Before(first) {
				first, found = at, true
			}
		}
	}
	return first, found, nil
}

// depth is how many deliveries are queued: pending, whether due, claimed or waiting to retry.
func (o *outbox) depth(ctx context.Context) (int64, error) {
	cmds := make([]*redis.IntCmd, eventlog.Partitions)
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for shard := range eventlog.Partitions {
			cmds[shard] = p.ZCard(ctx, o.queueKey(shard))
		}
		return nil
	})
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, err
}

// Filter selects deliveries to list; zero fields select all.
type Filter struct {
	IssueID string
	Status  Status
	// Visible, when set, keeps only the deliveries whose issue's grid it accepts.
	Visible func(grid string) bool
}

// MaxScan bounds how many of the newest deliveries a list reads per shard before filtering.
const MaxScan = 2000

// list returns up to limit deliveries that f selects, newest first.
func (o *outbox) list(ctx context.Context, f Filter, limit int) ([]Delivery, error) {
	var idCmds []*redis.StringSliceCmd
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if f.IssueID != "" {
			idCmds = append(idCmds, p.ZRevRange(ctx, o.issueKey(f.IssueID), 0, MaxScan-1))
			return nil
		}
		for shard := range eventlog.Partitions {
			idCmds = append(idCmds, p.ZRevRange(ctx, o.allKey(shard), 0, MaxScan-1))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("notify: list: %w", err)
	}
	var ids []string
	for _, c := range idCmds {
		ids = append(ids, c.Val()...)
	}
	// Pipelined GETs, not one MGET, which a Redis Cluster refuses across slots.
	docs := make([]*redis.StringCmd, len(ids))
	_, err = o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			docs[i] = p.Get(ctx, o.docKey(issueOf(id), id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("notify: list: %w", err)
	}
	var out []Delivery
	for _, c := range docs {
		raw, err := c.Bytes()
		if err != nil {
			continue // expired after its retention
		}
		var d Delivery
		if json.Unmarshal(raw, &d) != nil {
			continue
		}
		if (f.Status != "" && d.Status != f.Status) || (f.Visible != nil && !f.Visible(d.Grid)) {
			continue
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b Delivery) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.Seq, a.Seq), cmp.Compare(a.ID, b.ID))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
