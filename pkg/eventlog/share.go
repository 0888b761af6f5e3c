package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// The replicas of a service spread its partitions among themselves: each says it is alive in the
// MembersBucket key-value bucket, with how many partitions it holds, counts the live replicas of
// its service, and pulls no more than its fair share (Partitions over the replicas, rounded up).
// A replica over its share hands a partition on, but only while another replica, alive at its last
// beat, says it holds less than its share: that one asks for every partition it does not hold, and
// takes it. A replica that died still counts until its entry expires (MemberTTL), after the server
// has already unpinned its partitions (OwnerTTL) and the survivors have taken them; its silence
// since keeps them from handing those partitions back to it. Whatever else leaves a partition with
// nobody asking for it (the one it was handed to died too) is caught by orphaned.
const (
	MembersBucket = "whistle_members"
	// MemberTTL is how long a replica counts after it last said it was alive.
	MemberTTL = 15 * time.Second
	// shareTick is how often a replica says it is alive and looks at its share.
	shareTick = MemberTTL / 5
)

// member is what a replica says of itself in MembersBucket: when (for whoever reads the bucket;
// the replicas go by the time the server stored it), and how many partitions it holds.
type member struct {
	At   time.Time `json:"at"`
	Held int       `json:"held"`
}

// share is one replica's part of its service's partitions.
type share struct {
	kv      jetstream.KeyValue
	key     string // <service>.<replica id>
	service string
	members atomic.Int64 // live replicas of the service, this one included
	// wanting is set when another live replica said it holds less than its share: one that asks
	// for the partitions it does not hold, so that a partition handed on is taken.
	wanting atomic.Bool
	// owned says which partitions this replica holds: it has been receiving their messages.
	owned [Partitions]atomic.Bool
}

// joinShare says this replica of the service is alive and learns how many there are.
func (l *Log) joinShare(ctx context.Context, service string) (*share, error) {
	kv, err := l.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      MembersBucket,
		Description: "Live replicas of each Whistle service, to spread its partitions",
		TTL:         MemberTTL,
		Storage:     jetstream.MemoryStorage,
		Replicas:    l.stream.CachedInfo().Config.Replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = l.js.KeyValue(ctx, MembersBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("eventlog: members bucket: %w", err)
	}
	s := &share{kv: kv, key: service + "." + nuid.Next(), service: service}
	s.members.Store(1)
	return s, s.beat(ctx)
}

// beat says the replica is alive and how many partitions it holds, counts the live replicas,
// and learns whether one of the others holds less than its share.
func (s *share) beat(ctx context.Context) error {
	say, err := json.Marshal(member{At: time.Now().UTC(), Held: s.held()})
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, s.key, say); err != nil {
		return fmt.Errorf("eventlog: say %s is alive: %w", s.key, err)
	}
	keys, err := s.kv.ListKeysFiltered(ctx, s.service+".*")
	if err != nil {
		return fmt.Errorf("eventlog: list the replicas of %s: %w", s.service, err)
	}
	var others []string
	for k := range keys.Keys() {
		if k != s.key {
			others = append(others, k)
		}
	}
	n := int64(len(others) + 1)
	s.members.Store(n)
	fair := fairShare(n)
	wanting := false
	for _, k := range others {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // gone since the listing
		}
		if err != nil {
			return fmt.Errorf("eventlog: read replica %s: %w", k, err)
		}
		if time.Since(e.Created()) > 2*shareTick {
			continue // silent for two beats: killed, most likely, and wanting nothing
		}
		var m member
		if json.Unmarshal(e.Value(), &m) != nil || m.Held < fair {
			wanting = true // one that says nothing of its share is taken as wanting, as all did before
		}
	}
	s.wanting.Store(wanting)
	return nil
}

// run beats until ctx ends, then says the replica has gone.
func (s *share) run(ctx context.Context) {
	t := time.NewTicker(shareTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			leaveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_ = s.kv.Delete(leaveCtx, s.key)
			return
		case <-t.C:
			_ = s.beat(ctx) // a missed beat only makes the share look larger for a while
		}
	}
}

// fair is how many partitions this replica may hold.
func (s *share) fair() int { return fairShare(s.members.Load()) }

// fairShare is the share of each of n replicas: the partitions over them, rounded up.
func fairShare(n int64) int {
	n = max(n, 1)
	return int((Partitions + n - 1) / n)
}

// held is how many partitions this replica holds.
func (s *share) held() int {
	n := 0
	for i := range s.owned {
		if s.owned[i].Load() {
			n++
		}
	}
	return n
}

// mayPull reports whether the replica should ask for partition part's messages: it holds it, or
// holds less than its share.
func (s *share) mayPull(part int) bool {
	return s.owned[part].Load() || s.held() < s.fair()
}

// shouldRelease reports whether the replica should hand partition part on: it holds more than its
// share, another replica wants more than it holds, and part is among the last partitions it
// holds, as many as it holds too many. With no replica wanting one, a partition handed on would
// wait for nobody.
func (s *share) shouldRelease(part int) bool {
	excess := s.held() - s.fair()
	if !s.owned[part].Load() || excess <= 0 || !s.wanting.Load() {
		return false
	}
	for i := Partitions - 1; i >= 0 && excess > 0; i-- {
		if s.owned[i].Load() {
			if i == part {
				return true
			}
			excess--
		}
	}
	return false
}
