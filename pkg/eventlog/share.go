package eventlog

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// The replicas of a service spread its partitions among themselves: each says it is alive in the
// MembersBucket key-value bucket, counts the live replicas of its service, and pulls no more than
// its fair share (Partitions over the replicas, rounded up). A replica over its share hands a
// partition on; one under it asks for every partition it does not hold, so it takes the
// partitions of a replica that died once the server unpins them (OwnerTTL) and the dead one no
// longer counts (MemberTTL).
const (
	MembersBucket = "whistle_members"
	// MemberTTL is how long a replica counts after it last said it was alive.
	MemberTTL = 15 * time.Second
	// shareTick is how often a replica says it is alive and looks at its share.
	shareTick = MemberTTL / 5
)

// share is one replica's part of its service's partitions.
type share struct {
	kv      jetstream.KeyValue
	key     string // <service>.<replica id>
	service string
	members atomic.Int64 // live replicas of the service, this one included
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

// beat says the replica is alive and counts the live replicas.
func (s *share) beat(ctx context.Context) error {
	if _, err := s.kv.PutString(ctx, s.key, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("eventlog: say %s is alive: %w", s.key, err)
	}
	keys, err := s.kv.ListKeysFiltered(ctx, s.service+".*")
	if err != nil {
		return fmt.Errorf("eventlog: list the replicas of %s: %w", s.service, err)
	}
	n := int64(0)
	for range keys.Keys() {
		n++
	}
	s.members.Store(max(n, 1))
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
func (s *share) fair() int {
	n := int(s.members.Load())
	return (Partitions + n - 1) / n
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
// share, and part is among the last partitions it holds, as many as it holds too many.
func (s *share) shouldRelease(part int) bool {
	excess := s.held() - s.fair()
	if !s.owned[part].Load() || excess <= 0 {
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
