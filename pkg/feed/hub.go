package feed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sizes and pauses of the hub's reading.
const (
	// readBatch is how many entries of one feed one XREAD or XRANGE returns at most.
	readBatch = 256
	// blockFor bounds each blocking read, so that a feed a new follower asks for joins the read
	// within it even when the wake-up (CLIENT UNBLOCK) reached the connection before it blocked.
	blockFor = time.Second
	// followerBuffer is how many entries a follower may leave untaken before the hub stops
	// handing it entries; it then reads what it missed from the feed itself and joins again.
	followerBuffer = 1024
)

// Hub reads feeds for the followers of one process. It holds one connection of its client,
// blocked in XREAD on every feed that has a follower, only while any has; so a process holds
// one connection for all its watches, and reads each entry once. On a Redis Cluster one XREAD
// may name only keys of one hash slot, so the hub holds one such connection, to the slot's
// master, for each slot whose feeds are followed: as many as the departments and areas watched,
// never as many as the watches.
//
// Lock order: Hub.mu only; it is never held across a call to Redis.
type Hub struct {
	rdb redis.UniversalClient

	mu sync.Mutex
	// tails holds, for each feed followed, where the hub has read it to and who follows it.
	tails map[string]*tail
	// readers holds the reading goroutine of each group of feeds followed (see group); one
	// stops when no feed of its group is followed.
	readers map[string]*reader
}

// reader is the goroutine that reads one group of feeds.
type reader struct {
	// id is the client id of the connection it blocks on, 0 while it has none, and node the
	// server of that connection, which a CLIENT UNBLOCK must reach. Waking it is always
	// harmless: the connection may have gone back to the pool meanwhile, and a blocked read
	// that wakes for nothing reads again.
	id   int64
	node *redis.Client
}

// tail is one followed feed.
type tail struct {
	cursor pos
	subs   map[*sub]struct{}
}

// sub is one follower's share of a tail: the live entries, and why they stopped.
type sub struct {
	key string
	// scope is the scope whose entries the follower takes; "" takes every entry.
	scope string
	c     chan Entry
	err   error // set before c is closed
}

// errOverflow is why the hub stops handing a follower entries: it left followerBuffer untaken.
var errOverflow = errors.New("feed: the follower left too many entries untaken")

// NewHub returns a hub reading with rdb, a client of one server or of a cluster.
func NewHub(rdb redis.UniversalClient) *Hub {
	return &Hub{rdb: rdb, tails: map[string]*tail{}, readers: map[string]*reader{}}
}

// group names the feeds one XREAD may read together: on one server every feed, and on a cluster
// those of one hash tag, whose keys share a slot ("department:feed:{water}" reads with every
// feed tagged "water"). Feeds of two tags that happen to share a slot are read apart, which
// costs a connection and nothing else.
func (h *Hub) group(key string) string {
	if _, cluster := h.rdb.(*redis.ClusterClient); !cluster {
		return ""
	}
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			return key[open+1 : open+1+n]
		}
	}
	return key // no hash tag: the whole key decides the slot
}

// server returns a client of the server that holds key: the one server, or the master of the
// key's slot on a cluster.
func (h *Hub) server(ctx context.Context, key string) (*redis.Client, error) {
	switch c := h.rdb.(type) {
	case *redis.Client:
		return c, nil
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	}
	return nil, fmt.Errorf("feed: a %T is neither a client of one server nor of a cluster", h.rdb)
}

// Follower reads one feed for one watch: first the entries between its position and where the
// hub stood when it joined, then what the hub reads live.
type Follower struct {
	// From is the position the follower follows from: the position given, or, when none was,
	// the feed's newest entry as it joined ("0-0" for a feed that has none). It is empty when
	// following from Oldest, which names no position.
	From string

	hub   *Hub
	key   string
	scope string          // the scope whose entries it takes; "" takes all
	ctx   context.Context // the Follow's: the follower leaves the hub when it ends
	sub   *sub
	stop  func() bool
	start pos // where the hub stood when the follower (last) joined
	at    pos // the last entry taken, or the position it follows from
	// exact is whether every entry after at must still be in the feed: it is not only before
	// the first entry is taken from Oldest.
	exact bool
	buf   []Entry // entries read while catching up, not yet taken
	bufAt []pos
}

// Follow returns a follower of the feed at key after the position after: "" follows from the
// feed's newest entry, Oldest from its oldest, and a position (the Position of an entry, or a
// From) from the entry after it. A position the feed cannot resume from is ErrGone; one of the
// wrong form is ErrBadPosition. The follower stops when ctx ends or Stop is called.
func (h *Hub) Follow(ctx context.Context, key, after string) (*Follower, error) {
	return h.FollowIn(ctx, key, after, "")
}

// FollowIn is Follow for the entries of one scope of a feed that several scopes share (see
// Append): the follower takes only the entries in scope, and its positions are those entries'
// positions in the shared feed. The hub still reads the feed once for all its followers, and
// hands each only its scope's entries, so a follower's buffer holds only what it will take.
func (h *Hub) FollowIn(ctx context.Context, key, after, scope string) (*Follower, error) {
	f := &Follower{hub: h, key: key, scope: scope, ctx: ctx, exact: after != Oldest}
	switch after {
	case "", Oldest:
	default:
		p, err := parsePos(after)
		if err != nil {
			return nil, err
		}
		if err := h.check(ctx, key, p); err != nil {
			return nil, err
		}
		f.at, f.From = p, after
	}
	if err := f.join(); err != nil {
		return nil, err
	}
	if after == "" {
		// From whichever is later: the newest entry now, or where the hub stood (it may have
		// read further since). Every entry up to it was written before Follow returns, so a
		// view read after it includes them, and none of them is handed on as news.
		newest, err := h.newest(ctx, key)
		if err != nil {
			f.Stop()
			return nil, err
		}
		f.at = f.start
		if f.start.less(newest) {
			f.at = newest
		}
		f.From = f.at.String()
	}
	if after == Oldest {
		// Read from the oldest entry held: "-" as the first range's start.
		var err error
		if f.buf, f.bufAt, err = f.rangeFrom(ctx, "-"); err != nil {
			f.Stop()
			return nil, err
		}
	}
	return f, nil
}

// join subscribes the follower to the hub's reading of its feed, from where the hub stands.
func (f *Follower) join() error {
	newest, err := f.hub.newest(f.ctx, f.key)
	if err != nil {
		return err
	}
	s, start := f.hub.subscribe(f.ctx, f.key, f.scope, newest)
	f.sub, f.start = s, start
	f.stop = context.AfterFunc(f.ctx, func() { f.hub.unsubscribe(s) })
	return nil
}

// Stop stops the follower before its context ends.
func (f *Follower) Stop() {
	if f.stop() {
		f.hub.unsubscribe(f.sub)
	}
}

// Next returns the next entry of the feed, waiting for it; after an error the follower is done.
func (f *Follower) Next(ctx context.Context) (Entry, error) {
	for {
		if len(f.buf) > 0 {
			e := f.buf[0]
			f.at, f.exact = f.bufAt[0], true
			f.buf, f.bufAt = f.buf[1:], f.bufAt[1:]
			if !e.In(f.scope) {
				continue // another scope's: passed over, but the position moves past it
			}
			return e, nil
		}
		if f.at.less(f.start) {
			if err := f.catchUp(ctx); err != nil {
				return Entry{}, err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		case e, ok := <-f.sub.c:
			if ok {
				p, _ := parsePos(e.Position)
				if !f.at.less(p) {
					continue // taken while catching up
				}
				f.at, f.exact = p, true
				return e, nil
			}
			if !errors.Is(f.sub.err, errOverflow) {
				return Entry{}, f.sub.err
			}
			// The hub stopped handing this follower entries, which it took too slowly: join
			// again, from where the hub now stands, and read what lies between from the feed.
			f.stop()
			if err := f.join(); err != nil {
				return Entry{}, err
			}
		}
	}
}

// catchUp reads the next batch of entries between the follower's position and where the hub
// stood when it joined.
func (f *Follower) catchUp(ctx context.Context) error {
	var err error
	f.buf, f.bufAt, err = f.rangeFrom(ctx, "("+f.at.String())
	if err != nil {
		return err
	}
	if f.exact {
		// Trimming removes the oldest entries; had it removed any after the position before
		// the batch was read, the batch would start past a gap.
		info, err := f.hub.info(ctx, f.key)
		if err != nil {
			return err
		}
		if f.at.less(info.maxDeleted) {
			return fmt.Errorf("feed %s: entries after %s were trimmed: %w", f.key, f.at, ErrGone)
		}
	}
	if len(f.buf) == 0 {
		f.at = f.start // nothing left before where the hub stood
	}
	return nil
}

// rangeFrom reads a batch of the follower's feed from start up to where the hub stood when it
// joined.
func (f *Follower) rangeFrom(ctx context.Context, start string) ([]Entry, []pos, error) {
	ms, err := f.hub.rdb.XRangeN(ctx, f.key, start, f.start.String(), readBatch).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("feed %s: read: %w", f.key, err)
	}
	es, ps := make([]Entry, 0, len(ms)), make([]pos, 0, len(ms))
	for _, m := range ms {
		e, p, err := entryOf(m)
		if err != nil {
			return nil, nil, err
		}
		es, ps = append(es, e), append(ps, p)
	}
	return es, ps, nil
}

// feedInfo is what a resume needs to know of a feed.
type feedInfo struct {
	maxDeleted pos // the newest entry ever trimmed
}

// info reads what a resume needs to know of the feed at key; a missing feed has trimmed nothing.
func (h *Hub) info(ctx context.Context, key string) (feedInfo, error) {
	x, err := h.rdb.XInfoStream(ctx, key).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return feedInfo{}, nil
		}
		return feedInfo{}, fmt.Errorf("feed %s: info: %w", key, err)
	}
	md, err := parsePos(x.MaxDeletedEntryID)
	if err != nil {
		return feedInfo{}, fmt.Errorf("feed %s: info: %w", key, err)
	}
	return feedInfo{maxDeleted: md}, nil
}

// check reports whether the feed can resume after p: p is the start ("0-0"), an entry the feed
// holds, or the newest entry it trimmed; any other position was trimmed with what followed it,
// or is not one of this feed's.
func (h *Hub) check(ctx context.Context, key string, p pos) error {
	if p == (pos{}) {
		return nil
	}
	held, err := h.rdb.XRangeN(ctx, key, p.String(), p.String(), 1).Result()
	if err != nil {
		return fmt.Errorf("feed %s: read: %w", key, err)
	}
	if len(held) == 1 {
		return nil
	}
	info, err := h.info(ctx, key)
	if err != nil {
		return err
	}
	if info.maxDeleted == p {
		return nil
	}
	if p.less(info.maxDeleted) {
		return fmt.Errorf("feed %s: entries after %s were trimmed: %w", key, p, ErrGone)
	}
	return fmt.Errorf("feed %s holds no position %s: %w", key, p, ErrGone)
}

// newest returns the position of the feed's newest entry, "0-0" when it has none.
func (h *Hub) newest(ctx context.Context, key string) (pos, error) {
	ms, err := h.rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
	if err != nil {
		return pos{}, fmt.Errorf("feed %s: read: %w", key, err)
	}
	if len(ms) == 0 {
		return pos{}, nil
	}
	return parsePos(ms[0].ID)
}

// subscribe adds a follower of key and returns the position from which the hub will hand it
// entries: newest, when no one followed the feed yet, or where the hub has read the feed to.
func (h *Hub) subscribe(ctx context.Context, key, scope string, newest pos) (*sub, pos) {
	s := &sub{key: key, scope: scope, c: make(chan Entry, followerBuffer)}
	h.mu.Lock()
	t, followed := h.tails[key]
	if !followed {
		t = &tail{cursor: newest, subs: map[*sub]struct{}{}}
		h.tails[key] = t
	}
	t.subs[s] = struct{}{}
	start := t.cursor
	g := h.group(key)
	r := h.readers[g]
	if r == nil {
		r = &reader{}
		h.readers[g] = r
		go h.run(g, r, key)
	}
	id, node := r.id, r.node
	h.mu.Unlock()
	if !followed && id != 0 {
		// Wake the blocked read, so that it reads this feed too from now on.
		_ = node.ClientUnblock(context.WithoutCancel(ctx), id).Err()
	}
	return s, start
}

// unsubscribe removes a follower; a feed without followers is no longer read, and when no feed
// of its group is followed the hub lets the group's connection go.
func (h *Hub) unsubscribe(s *sub) {
	h.mu.Lock()
	if t := h.tails[s.key]; t != nil {
		delete(t.subs, s)
		if len(t.subs) == 0 {
			delete(h.tails, s.key)
		}
	}
	g := h.group(s.key)
	var id int64
	var node *redis.Client
	if r := h.readers[g]; r != nil && len(h.followed(g)) == 0 {
		id, node = r.id, r.node
	}
	h.mu.Unlock()
	if id != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = node.ClientUnblock(ctx, id).Err()
	}
}

// followed returns the feeds of group g that have followers. Hub.mu must be held.
func (h *Hub) followed(g string) []string {
	var keys []string
	for k := range h.tails {
		if h.group(k) == g {
			keys = append(keys, k)
		}
	}
	return keys
}

// run reads every followed feed of group g, starting with key, in one blocking XREAD after
// another on a connection of its own to the server that holds them, and hands each entry to the
// feed's followers, until no feed of the group is followed or Redis fails, which ends every
// follower of the group.
func (h *Hub) run(g string, r *reader, key string) {
	ctx := context.Background()
	node, err := h.server(ctx, key)
	if err != nil {
		h.fail(g, r, fmt.Errorf("feed: connect: %w", err))
		return
	}
	conn := node.Conn()
	defer conn.Close()
	id, err := conn.ClientID(ctx).Result()
	if err != nil {
		h.fail(g, r, fmt.Errorf("feed: connect: %w", err))
		return
	}
	h.mu.Lock()
	r.id, r.node = id, node
	h.mu.Unlock()
	for {
		h.mu.Lock()
		keys := h.followed(g)
		if len(keys) == 0 {
			if h.readers[g] == r {
				delete(h.readers, g)
			}
			h.mu.Unlock()
			return
		}
		ids := make([]string, len(keys))
		for i, k := range keys {
			ids[i] = h.tails[k].cursor.String()
		}
		h.mu.Unlock()
		res, err := conn.XRead(ctx, &redis.XReadArgs{Streams: append(keys, ids...), Count: readBatch, Block: blockFor}).Result()
		if errors.Is(err, redis.Nil) {
			continue // timed out, or woken for a new feed
		}
		if err != nil {
			h.fail(g, r, fmt.Errorf("feed: read: %w", err))
			return
		}
		h.deliver(res)
	}
}

// deliver hands what one read returned to the feeds' followers; one whose buffer is full is
// handed no more (errOverflow) rather than held up for: it catches up from the feed itself.
func (h *Hub) deliver(res []redis.XStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range res {
		t := h.tails[s.Stream]
		if t == nil {
			continue // no one follows it any more
		}
		for _, m := range s.Messages {
			e, p, err := entryOf(m)
			if err != nil {
				continue // not an entry Append wrote: nothing to announce
			}
			t.cursor = p
			for sb := range t.subs {
				if !e.In(sb.scope) {
					continue
				}
				select {
				case sb.c <- e:
				default:
					sb.err = errOverflow
					close(sb.c)
					delete(t.subs, sb)
				}
			}
		}
		if len(t.subs) == 0 {
			delete(h.tails, s.Stream)
		}
	}
}

// fail ends every follower of group g's feeds with err, forgets those feeds and lets r, the
// group's reader, go; the next Follow of a feed of the group starts reading it again.
func (h *Hub) fail(g string, r *reader, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range h.followed(g) {
		for sb := range h.tails[k].subs {
			sb.err = err
			close(sb.c)
		}
		delete(h.tails, k)
	}
	if h.readers[g] == r {
		delete(h.readers, g)
	}
}
