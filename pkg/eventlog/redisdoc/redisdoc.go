// Package redisdoc keeps a service's projection in Redis as one JSON document per issue, beside the
// indexes the service writes with it. It owns what every such projection does the same way:
// reading and writing the documents, the ordering rule (eventlog.Admit), holding the events of a
// quarantined issue, the index of quarantined issues, and applying a batch of records in two
// round trips. A service gives it only its fold.
//
// Writes are conditional, without WATCH: beside each document a sequence key holds the issue's last
// sequence, and a script writes both only while that key still holds the sequence the fold
// started from, answering for each document whether it wrote it. On one server one call of the
// script writes a batch's documents (up to MaxDocsPerWrite), and appends the feed entries that
// announce them, each only with its document (see feed.Pending); on a cluster, whose documents
// live in different slots, one call writes each, after the entries. The issue's owner is normally
// its only writer, so the condition holds and the store keeps the documents it wrote in memory,
// to fold the next event without reading it back; when another writer got there first, the write
// is refused, the cached document is dropped, and the issue is folded again from its first event,
// read from the stream, up to what Redis holds: the refused write's index writes were not
// refused, and may have left an index behind the document (see ApplyBatch).
//
// The documents are encoded by Marshal and read by Unmarshal (see Marshal).
package redisdoc

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	json "github.com/goccy/go-json"
	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
)

// State is a service's per-issue state: it exposes the position fields that Store moves.
type State interface {
	// Position returns the issue's last sequence and quarantine mark, for Store to read and set.
	Position() (lastSeq *uint64, mark **quarantine.Mark)
}

// Store is a projection kept as one JSON document per issue. S is a pointer type.
type Store[S State] struct {
	// Service is the service's name: its consumer, and the prefix of every key it writes.
	Service string
	RDB     redis.UniversalClient
	// Empty returns the state of an issue never seen.
	Empty func(issueID string) S
	// Fold applies rec to st, which it follows, and queues the index writes on tx. It returns an
	// error wrapping eventlog.ErrImpossible for an event that can never apply. It must have no
	// effect outside st and tx, and its index writes must bring the indexes in line with st
	// (add what st has, remove what it no longer has), since a fold may run again after a crash
	// between the index writes and the document's.
	Fold func(ctx context.Context, st S, rec eventlog.Record, tx redis.Pipeliner) error
	// OnQuarantine, when set, queues on tx what the service does when an issue is first
	// quarantined with m (escalation drops its timers, which must not fire on a state that no
	// longer follows the stream; the department announces the mark in its feeds); it sees the
	// state as it stood before the mark.
	OnQuarantine func(ctx context.Context, st S, m quarantine.Mark, tx redis.Pipeliner)

	once  sync.Once
	cache *docCache[S]
	// docs holds, for each issue in cache, its document and sequence key as last written or read.
	docs  *docCache[stored]
	locks [lockStripes]sync.Mutex
}

// lockStripes is how many locks serialise the store's writers in this process, by issue.
const lockStripes = 64

// MaxWriteAttempts bounds how often a write refused by another writer is folded again.
const MaxWriteAttempts = 8

var (
	_ eventlog.BatchProjection = (*Store[State])(nil)
	_ eventlog.PartitionCache  = (*Store[State])(nil)
)

// Key is the key of an issue's document; the braces make the case number a Redis Cluster hash tag.
func (s *Store[S]) Key(issueID string) string { return s.Service + ":issue:{" + issueID + "}" }

// seqKey holds the issue's last sequence, which conditions every write of its document; it shares
// the document's hash tag, so that one script can write both in Redis Cluster.
func (s *Store[S]) seqKey(issueID string) string { return s.Service + ":seq:{" + issueID + "}" }

// QuarantinedKey scores each quarantined issue by the sequence of the event it could not apply.
func (s *Store[S]) QuarantinedKey() string { return QuarantinedKey(s.Service) }

// QuarantinedKey is the key of a service's index of quarantined issues.
func QuarantinedKey(service string) string { return service + ":quarantined" }

// Name is the service's name.
func (s *Store[S]) Name() string { return s.Service }

// Load returns an issue's state as Redis holds it; an issue never seen has the Empty state.
func (s *Store[S]) Load(ctx context.Context, issueID string) (S, error) {
	st, _, err := s.load(ctx, issueID)
	return st, err
}

// load is Load, returning the document it read as well (nil for an issue never seen).
func (s *Store[S]) load(ctx context.Context, issueID string) (S, stored, error) {
	got, err := readOf(s.queueRead(ctx, s.RDB, issueID))
	if err != nil {
		var zero S
		return zero, stored{}, fmt.Errorf("%s store: read %s: %w", s.Service, issueID, err)
	}
	st, err := s.Decode(issueID, got.doc)
	return st, got, err
}

// stored is an issue's document and sequence key as Redis holds them: nil and "" for none.
type stored struct {
	token string
	doc   []byte
}

// queueRead queues the read of an issue's sequence key and document, which share a slot, at once.
func (s *Store[S]) queueRead(ctx context.Context, c redis.Cmdable, issueID string) *redis.SliceCmd {
	return c.MGet(ctx, s.seqKey(issueID), s.Key(issueID))
}

// readOf is what queueRead read.
func readOf(cmd *redis.SliceCmd) (stored, error) {
	vals, err := cmd.Result()
	if err != nil {
		return stored{}, err
	}
	var out stored
	if v, ok := vals[0].(string); ok {
		out.token = v
	}
	if v, ok := vals[1].(string); ok {
		out.doc = []byte(v)
	}
	return out, nil
}

// Marshal encodes a document, in the bytes encoding/json writes (a service's tests hold its
// document type to them, with pkg/testing/doctest). It is github.com/goccy/go-json, which encodes
// an escalation document in half encoding/json's time and decodes one in a quarter (measured in
// the tests of escalation's domain): a storm of breaches encodes and decodes thousands a second,
// and the codec was a sixth of the process's CPU in one.
func Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal reads a document that Marshal or encoding/json wrote into v.
func Unmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }

// Decode reads a stored document of the issue; nil is the Empty state.
func (s *Store[S]) Decode(issueID string, raw []byte) (S, error) {
	st := s.Empty(issueID)
	if len(raw) == 0 {
		return st, nil
	}
	if err := Unmarshal(raw, st); err != nil {
		return st, fmt.Errorf("%s store: decode %s: %w", s.Service, issueID, err)
	}
	return st, nil
}

// Known returns where the projection stands on an issue as this store last wrote or read it, when
// it holds the issue's document: another writer (another process, a wipe of Redis) may have moved
// it since, so it is a hint for a caller whose write is conditional anyway, not a read.
func (s *Store[S]) Known(issueID string) (eventlog.Position, bool) {
	s.init()
	defer s.lock([]string{issueID})()
	st, ok := s.cache.get(issueID)
	if !ok {
		return eventlog.Position{}, false
	}
	last, mark := st.Position()
	return positionOf(*last, *mark), true
}

// lastOf is the last sequence of a state.
func lastOf[S State](st S) *uint64 {
	last, _ := st.Position()
	return last
}

// positionOf is a position with a copy of the mark, which a later fold of the state may change.
func positionOf(last uint64, mark *quarantine.Mark) eventlog.Position {
	return eventlog.Position{LastSeq: last, Quarantine: mark.Clone()}
}

// Latest returns the issue's state for a command to decide on: decoded afresh from the document
// this store last wrote or read, when it holds the issue, or as Redis holds it. A command appends
// conditionally on the state's sequence, so a state another writer has moved on only costs it a
// refused append and a second look (Decide catches the store up then). It is not for reads shown
// to people, which must see what Redis holds.
func (s *Store[S]) Latest(ctx context.Context, issueID string) (S, error) {
	if st, ok, err := s.Held(issueID); ok || err != nil {
		return st, err
	}
	if eventlog.ExpectsNewIssue(ctx) {
		return s.Empty(issueID), nil // a command's append is conditional on that (eventlog.NewIssue)
	}
	return s.Load(ctx, issueID)
}

// Held returns, decoded afresh, the issue's document as this store last wrote or read it, when it
// holds the issue: a document Redis held then, which another writer may have replaced since. A
// read shown to people may take it when it is at least as recent as what it must show.
func (s *Store[S]) Held(issueID string) (S, bool, error) {
	s.init()
	unlock := s.lock([]string{issueID})
	st, held := s.cache.get(issueID)
	got, ok := s.docs.get(issueID)
	if c, clones := any(st).(Cloner[S]); held && ok && clones {
		defer unlock()
		return c.Clone(), true, nil // under the lock: a fold changes the kept state in place
	}
	unlock()
	if !held || !ok {
		var zero S
		return zero, false, nil
	}
	st, err := s.Decode(issueID, got.doc)
	return st, err == nil, err
}

// Cloner is a State that copies itself, sharing nothing with the copy: the store then hands out
// copies of the states it keeps rather than decoding their documents again.
type Cloner[S any] interface {
	Clone() S
}

// Position returns where the projection stands on an issue, as Redis holds it. The store keeps
// what it read unless it holds a later state of the issue (written since the read), so that a
// command that reads the position before it decides (Decide) decides on Latest without a second
// read, and a store that another writer left behind catches up.
func (s *Store[S]) Position(ctx context.Context, issueID string) (eventlog.Position, error) {
	s.init()
	st, got, err := s.load(ctx, issueID)
	if err != nil {
		return eventlog.Position{}, err
	}
	last, mark := st.Position()
	pos := positionOf(*last, *mark)
	unlock := s.lock([]string{issueID})
	if held, ok := s.cache.get(issueID); !ok || *lastOf(held) < *last {
		s.keep(issueID, st, got)
	}
	unlock()
	return pos, nil
}

// Prefetch reads the documents of the issues this store does not hold, in one pipeline, and keeps
// them as Position would, for a writer about to decide on many issues at once (a timer loop firing
// a batch of deadlines): each decision then finds its position and state held instead of reading
// them one round trip at a time.
func (s *Store[S]) Prefetch(ctx context.Context, issueIDs []string) error {
	s.init()
	var missing []string
	for _, id := range issueIDs {
		if _, held := s.cache.get(id); !held {
			missing = append(missing, id)
		}
	}
	docs, err := s.readAll(ctx, missing)
	if err != nil {
		return fmt.Errorf("%s store: prefetch %d issues: %w", s.Service, len(missing), err)
	}
	for _, d := range docs {
		unlock := s.lock([]string{d.id})
		if held, ok := s.cache.get(d.id); !ok || *lastOf(held) < *lastOf(d.st) {
			s.keep(d.id, d.st, d.got)
		}
		unlock()
	}
	return nil
}

// LoadAll returns the states of the issues as Redis holds them, by issue, read in one pipeline:
// what a view that lists from the documents reads for a page. An issue never seen has the Empty
// state.
func (s *Store[S]) LoadAll(ctx context.Context, issueIDs []string) (map[string]S, error) {
	docs, err := s.readAll(ctx, issueIDs)
	if err != nil {
		return nil, fmt.Errorf("%s store: read %d issues: %w", s.Service, len(issueIDs), err)
	}
	out := make(map[string]S, len(docs))
	for _, d := range docs {
		out[d.id] = d.st
	}
	return out, nil
}

// Documents returns the documents of the issues as Redis holds them, by issue, read in one
// pipeline and not decoded, for a reader that takes only a part of each (escalation's scorecards);
// an issue never seen has none.
func (s *Store[S]) Documents(ctx context.Context, issueIDs []string) (map[string][]byte, error) {
	docs, err := s.readRaw(ctx, issueIDs)
	if err != nil {
		return nil, fmt.Errorf("%s store: read %d issues: %w", s.Service, len(issueIDs), err)
	}
	out := make(map[string][]byte, len(docs))
	for _, d := range docs {
		if d.got.doc != nil {
			out[d.id] = d.got.doc
		}
	}
	return out, nil
}

// fetched is an issue's document as read, and its state decoded.
type fetched[S State] struct {
	id  string
	got stored
	st  S
}

// readAll reads the documents of the issues, each once, in one pipeline, and decodes them on
// every core.
func (s *Store[S]) readAll(ctx context.Context, issueIDs []string) ([]fetched[S], error) {
	docs, err := s.readRaw(ctx, issueIDs)
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(docs))
	inParallel(len(docs), func(i int) { docs[i].st, errs[i] = s.Decode(docs[i].id, docs[i].got.doc) })
	return docs, errors.Join(errs...)
}

// readRaw reads the documents of the issues, each once, in one pipeline.
func (s *Store[S]) readRaw(ctx context.Context, issueIDs []string) ([]fetched[S], error) {
	cmds := map[string]*redis.SliceCmd{}
	pipe := s.RDB.Pipeline()
	for _, id := range issueIDs {
		if cmds[id] == nil {
			cmds[id] = s.queueRead(ctx, pipe, id)
		}
	}
	if len(cmds) == 0 {
		pipe.Discard()
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	docs := make([]fetched[S], 0, len(cmds))
	for id, cmd := range cmds {
		got, err := readOf(cmd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		docs = append(docs, fetched[S]{id: id, got: got})
	}
	return docs, nil
}

// inParallel runs do(i) for each i below n, on as many goroutines as the process has cores: the
// documents of a prefetch are a thousand or so to decode, milliseconds of one core that a writer
// deciding on them all would otherwise wait for.
func inParallel(n int, do func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				do(i)
			}
		})
	}
	wg.Wait()
}

// Apply folds one record into its issue's document and the indexes, following the ordering rule;
// a record of a quarantined issue is held.
func (s *Store[S]) Apply(ctx context.Context, rec eventlog.Record) error {
	errs, err := s.ApplyBatch(ctx, []eventlog.Record{rec})
	if err != nil {
		return err
	}
	return errs[0]
}

// ApplyBatch applies records of any issues, in stream order, in two round trips when nothing
// interferes: one reads where each issue stands (its sequence key when the store holds its
// document, the document otherwise), one writes the indexes and then each changed document. A
// record that does not follow its issue's last one gets an error wrapping eventlog.ErrGap, and so
// do the issue's later records in the batch. When a fold refuses a record, nothing is written and
// the error (wrapping eventlog.ErrImpossible) names it: apply the records one by one to learn which.
//
// When another writer moved an issue first, its document write is refused, but the index writes
// before it were not: they may have landed after the other writer's, from an older state. The next
// attempt therefore folds that issue again from its first event, read from the stream the records
// come from (eventlog.HistoryOf), which writes its indexes as its document has them (see refold).
func (s *Store[S]) ApplyBatch(ctx context.Context, recs []eventlog.Record) ([]error, error) {
	s.init()
	ids := issuesOf(recs)
	defer s.lock(ids)()
	trust := eventlog.ByOwner(ctx)
	var refused []string
	for attempt := 1; ; attempt++ {
		errs, retry, err := s.applyOnce(ctx, ids, recs, trust, refused)
		trust = false // another writer was there: read what it wrote
		if err != nil || len(retry) == 0 {
			return errs, err
		}
		if attempt == MaxWriteAttempts {
			return nil, fmt.Errorf("%s store: issues %v kept changing under the write: %w", s.Service, retry, eventlog.ErrConflict)
		}
		refused = retry
	}
}

// applyOnce is one attempt at a batch: it returns the outcome of each record, or the issues whose
// conditional write another writer refused, which the caller folds again. The issues in refused
// had their write refused in the attempt before. Of those, an issue that Redis now holds beyond
// every record the batch has of it is folded again from the stream first (see refold): the refused
// index writes came from an older state than the other writer's. One that the batch takes further
// needs no such fold, since the batch's folds write its indexes again after the other writer's.
func (s *Store[S]) applyOnce(ctx context.Context, ids []string, recs []eventlog.Record, trust bool, refused []string) ([]error, []string, error) {
	states, read, err := s.current(ctx, ids, trust, newIssues(recs))
	if err != nil {
		return nil, nil, err
	}
	pipe := s.RDB.Pipeline()
	rewrite := map[string]bool{} // refolded: the document is written even when no record moves it
	for _, id := range refused {
		if *lastOf(states[id]) <= lastIn(recs, id) {
			continue
		}
		st, ok, err := s.refold(ctx, id, states[id], pipe)
		if err != nil {
			pipe.Discard()
			s.forget(ids)
			return nil, nil, err
		}
		states[id], rewrite[id] = st, ok
	}
	from := make(map[string]uint64, len(ids)) // each issue's sequence before the batch
	tokens := make(map[string]string, len(ids))
	for _, id := range ids {
		last, _ := states[id].Position()
		from[id] = *last
		tokens[id] = s.token(id, *last, read)
	}
	errs := make([]error, len(recs))
	gapped := map[string]bool{}
	folding, entries := feed.Batched(ctx) // the folds' feed entries, queued together below
	for i, rec := range recs {
		id := rec.Event.GetIssueId()
		if gapped[id] {
			errs[i] = fmt.Errorf("issue %s: event %d follows an event not applied yet: %w", id, rec.Seq, eventlog.ErrGap)
			continue
		}
		errs[i] = s.step(folding, states[id], rec, pipe)
		if errors.Is(errs[i], eventlog.ErrGap) {
			gapped[id] = true
		} else if errs[i] != nil {
			// The fold may have changed the state and queued writes before it refused: drop both.
			pipe.Discard()
			s.forget(ids)
			return nil, nil, errs[i]
		}
	}
	docs := s.documentPipe(pipe)
	var announced []feed.Pending // appended by the documents' script, each with its document
	if docs == pipe {
		announced = entries.Take()
	} else {
		entries.Queue(ctx, pipe) // with the indexes, before the documents they announce
	}
	var writes []docWrite
	for _, id := range ids {
		last, _ := states[id].Position()
		if *last == from[id] && !rewrite[id] {
			if got, ok := read[id]; ok {
				s.keep(id, states[id], got) // as Redis holds it, for the issue's next event
			}
			continue
		}
		doc, err := Marshal(states[id])
		if err != nil {
			pipe.Discard()
			s.forget(ids)
			return nil, nil, fmt.Errorf("%s store: encode %s: %w", s.Service, id, err)
		}
		writes = append(writes, docWrite{id: id, from: tokens[id], to: advance(tokens[id], *last), doc: doc})
	}
	if len(writes) == 0 {
		pipe.Discard()
		docs.Discard()
		return errs, nil, nil
	}
	announced = s.withDocuments(ctx, pipe, writes, announced)
	replies := s.queueWrites(ctx, docs, writes, announced)
	if err := s.execInOrder(ctx, pipe, docs); err != nil {
		s.forget(ids)
		return nil, nil, fmt.Errorf("%s store: write %d issues: %w", s.Service, len(writes), err)
	}
	done, err := writtenOf(replies, len(writes))
	if err != nil {
		s.forget(ids)
		return nil, nil, fmt.Errorf("%s store: write %d issues: %w", s.Service, len(writes), err)
	}
	var again []string
	for i, w := range writes {
		if done[i] {
			s.keep(w.id, states[w.id], stored{token: w.to, doc: w.doc})
			continue
		}
		again = append(again, w.id)
		s.drop(w.id)
	}
	return errs, again, nil
}

// withDocuments returns the entries of announced whose issues' documents ws write, which the
// documents' script appends, and queues the rest on pipe as feed.Queue does. A fold that announces
// moves its issue, so every entry has its document; this keeps one that did not from being lost.
func (s *Store[S]) withDocuments(ctx context.Context, pipe redis.Pipeliner, ws []docWrite, announced []feed.Pending) []feed.Pending {
	written := make(map[string]bool, len(ws))
	for _, w := range ws {
		written[w.id] = true
	}
	var with, without []feed.Pending
	for _, e := range announced {
		if written[e.Issue] {
			with = append(with, e)
		} else {
			without = append(without, e)
		}
	}
	feed.Queue(ctx, pipe, without)
	return with
}

// lastIn is the sequence of the issue's last record in recs.
func lastIn(recs []eventlog.Record, issueID string) uint64 {
	var last uint64
	for _, rec := range recs {
		if rec.Event.GetIssueId() == issueID {
			last = max(last, rec.Seq)
		}
	}
	return last
}

// refold folds the issue again from its first event up to the sequence of st, as Redis holds it,
// reading the events from the stream (eventlog.HistoryOf), and queues every index write of those
// folds on tx: this store's write of the issue was refused because another writer moved it, and
// the index writes queued before that refused write may have landed after the other writer's, from
// an older state. Folding the whole history writes each index as the document has it, but no feed
// entry: the writers of st announced its events (feed.Announced). It reports whether it refolded:
// not for an issue never written or quarantined (whose timers and marks the quarantine owns), nor
// without a stream to read, nor when the stream does not lead to st (a stream replaced under the
// projection): the caller then carries on with st as it is.
func (s *Store[S]) refold(ctx context.Context, issueID string, st S, tx redis.Pipeliner) (S, bool, error) {
	history := eventlog.HistoryOf(ctx)
	last, mark := st.Position()
	if history == nil || *mark != nil || *last == 0 {
		return st, false, nil
	}
	recs, readErr := history.Read(ctx, issueID, 0)
	fresh := s.Empty(issueID)
	folds := s.RDB.Pipeline()        // queued on tx only once the folds reach st
	announced := feed.Announced(ctx) // whoever wrote st announced its events
	for _, rec := range recs {
		if rec.Seq > *last || s.step(announced, fresh, rec, folds) != nil {
			break
		}
	}
	if *lastOf(fresh) != *last {
		folds.Discard()
		if readErr != nil {
			return st, false, fmt.Errorf("%s store: fold %s again: %w", s.Service, issueID, readErr)
		}
		return st, false, nil
	}
	if err := tx.BatchProcess(ctx, folds.Cmds()...); err != nil {
		return st, false, err
	}
	return fresh, true, nil
}

// documentPipe returns the pipeline a write's documents go in, after its indexes in pipe. One
// server runs a pipeline's commands in order, so there it is pipe itself: one round trip, the
// indexes written before the documents. A cluster client sends each master its part of a
// pipeline at once, so a master dying in the middle could keep a document whose index writes
// another master lost: the batch, retried, finds the document applied and never writes them.
// On a cluster the documents follow in a pipeline of their own, sent once every index write has
// been stored, so that a failure between leaves indexes ahead of their documents (which the
// retried fold writes again, the same), never behind.
func (s *Store[S]) documentPipe(pipe redis.Pipeliner) redis.Pipeliner {
	if _, cluster := s.RDB.(*redis.ClusterClient); cluster {
		return s.RDB.Pipeline()
	}
	return pipe
}

// execInOrder sends the index writes and then, when they are a pipeline of their own, the
// documents (see documentPipe). Of a pipeline that met a Redis without its scripts, the scripts
// Redis refused run again once they are loaded, and nothing else (redisx.Exec): no index write
// is applied twice, and the documents are written after the feeds' appends as before.
func (s *Store[S]) execInOrder(ctx context.Context, indexes, docs redis.Pipeliner) error {
	if docs != indexes {
		if indexes.Len() > 0 {
			if _, err := redisx.Exec(ctx, s.RDB, indexes); err != nil {
				docs.Discard()
				return err
			}
		}
	}
	_, err := redisx.Exec(ctx, s.RDB, docs)
	return err
}

// step takes one record into st as the ordering rule says: skip it, hold it, or fold it.
func (s *Store[S]) step(ctx context.Context, st S, rec eventlog.Record, tx redis.Pipeliner) error {
	last, mark := st.Position()
	step, err := eventlog.Admit(*last, *mark, rec)
	switch step {
	case eventlog.Skip:
		return err // nil for a redelivery, ErrGap when an earlier event is missing
	case eventlog.Hold:
		(*mark).Held++
	default:
		if err := s.Fold(ctx, st, rec, tx); err != nil {
			return fmt.Errorf("issue %s at %d: %w", rec.Event.GetIssueId(), rec.Seq, err)
		}
	}
	*last = rec.Seq
	return nil
}

// Quarantine marks the issue quarantined at m.Seq, or, when it already is, holds that event too.
func (s *Store[S]) Quarantine(ctx context.Context, issueID string, m quarantine.Mark) error {
	s.init()
	defer s.lock([]string{issueID})()
	for range MaxWriteAttempts {
		states, read, err := s.current(ctx, []string{issueID}, false, nil)
		if err != nil {
			return err
		}
		st := states[issueID]
		last, mark := st.Position()
		from := s.token(issueID, *last, read)
		pipe := s.RDB.Pipeline()
		docs := s.documentPipe(pipe)
		switch {
		case *mark == nil:
			if s.OnQuarantine != nil {
				s.OnQuarantine(ctx, st, m, pipe)
			}
			*mark = &m
			pipe.ZAdd(ctx, s.QuarantinedKey(), redis.Z{Score: float64(m.Seq), Member: issueID})
		case m.Seq > *last:
			(*mark).Held++
		default:
			return nil
		}
		*last = max(*last, m.Seq)
		doc, err := Marshal(st)
		if err != nil {
			s.drop(issueID)
			return fmt.Errorf("%s store: encode %s: %w", s.Service, issueID, err)
		}
		w := docWrite{id: issueID, from: from, to: advance(from, *last), doc: doc}
		replies := s.queueWrites(ctx, docs, []docWrite{w}, nil)
		if err := s.execInOrder(ctx, pipe, docs); err != nil {
			s.drop(issueID)
			return fmt.Errorf("%s store: quarantine %s: %w", s.Service, issueID, err)
		}
		done, err := writtenOf(replies, 1)
		if err != nil {
			s.drop(issueID)
			return fmt.Errorf("%s store: quarantine %s: %w", s.Service, issueID, err)
		}
		if done[0] {
			s.keep(issueID, st, stored{token: w.to, doc: doc})
			return nil
		}
		s.drop(issueID)
	}
	return fmt.Errorf("%s store: quarantine %s: %w", s.Service, issueID, eventlog.ErrConflict)
}

// current returns the state each issue's next record folds into. Trusted, as the partition's owner
// applying its consumer's batch is (eventlog.ByOwner), being the issues' one writer, it takes what
// the store holds in memory, and an issue's first event starts from the Empty state, without a
// read; the conditional write refuses either when another writer has been there, and the next
// attempt reads. Otherwise it reads the sequence key of each issue the store holds (and the
// document too when the key disagrees) and the document and key of each other issue, in one
// round trip.
//
// It also returns what it read, by issue.
func (s *Store[S]) current(ctx context.Context, ids []string, trusted bool, newIssues map[string]bool) (map[string]S, map[string]stored, error) {
	out := make(map[string]S, len(ids))
	read := map[string]stored{}
	pipe := s.RDB.Pipeline()
	seqs := map[string]*redis.StringCmd{}
	docs := map[string]*redis.SliceCmd{}
	for _, id := range ids {
		st, cached := s.cache.get(id)
		switch {
		case cached && trusted:
			out[id] = st
		case cached:
			out[id] = st
			seqs[id] = pipe.Get(ctx, s.seqKey(id))
		case trusted && newIssues[id]:
			out[id] = s.Empty(id)
		default:
			docs[id] = s.queueRead(ctx, pipe, id)
		}
	}
	if len(seqs)+len(docs) == 0 {
		pipe.Discard()
		return out, read, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("%s store: read %d issues: %w", s.Service, len(ids), err)
	}
	var stale []string
	for id, cmd := range seqs {
		token, err := cmd.Result()
		if errors.Is(err, redis.Nil) {
			token, err = "0", nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s store: read the sequence of %s: %w", s.Service, id, err)
		}
		if token != s.token(id, *lastOf(out[id]), nil) {
			stale = append(stale, id) // another writer moved it: read the document
		}
	}
	if len(stale) > 0 {
		pipe = s.RDB.Pipeline()
		for _, id := range stale {
			s.drop(id)
			docs[id] = s.queueRead(ctx, pipe, id)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, nil, fmt.Errorf("%s store: read %d issues: %w", s.Service, len(stale), err)
		}
	}
	for id, cmd := range docs {
		got, err := readOf(cmd)
		if err != nil {
			return nil, nil, fmt.Errorf("%s store: read %s: %w", s.Service, id, err)
		}
		if out[id], err = s.Decode(id, got.doc); err != nil {
			return nil, nil, err
		}
		read[id] = got
	}
	return out, read, nil
}

// The sequence key of an issue holds a token that every write of its document changes, and that
// conditions the next. It is the issue's last sequence, written in decimal, unless a write left
// the sequence where it was (a fold again from the stream, see refold): that write appends a
// count, "17/1", then "17/2", so that a writer who read "17" before it is refused all the same.
// A store that keeps an issue's document assumes the plain sequence unless it wrote or read
// another token (docs); a wrong guess only costs a refused write and a read.

// token is the sequence key of an issue whose last sequence is last, as read holds it or as the
// store last wrote or read it; "0" for an issue never written.
func (s *Store[S]) token(issueID string, last uint64, read map[string]stored) string {
	if got, ok := read[issueID]; ok && got.token != "" {
		return got.token
	}
	plain := strconv.FormatUint(last, 10)
	if got, ok := s.docs.get(issueID); ok && strings.HasPrefix(got.token, plain+"/") {
		return got.token // the count of a rewrite at this very sequence
	}
	return plain
}

// advance is the token a write that leaves the issue at sequence last writes over the token from.
func advance(from string, last uint64) string {
	seq, count, _ := strings.Cut(from, "/")
	if plain := strconv.FormatUint(last, 10); plain != seq {
		return plain
	}
	n, _ := strconv.ParseUint(count, 10, 64)
	return seq + "/" + strconv.FormatUint(n+1, 10)
}

// docWrite is the conditional write of an issue's document: doc and the token to, while the
// issue's sequence key still holds from.
type docWrite struct {
	id       string
	from, to string
	doc      []byte
}

// MaxDocsPerWrite bounds the documents one script writes on a single server, so that one call
// holds Redis for a bounded time however large the batch: about 0.4 ms for an escalation batch in
// a storm of breaches, where the timer loop's reads and drops wait behind each call. A call of 256
// held it for about 3 ms, and the storm ran 1–4 % slower; a call's own cost is about a
// microsecond and a half, so 32 documents a call cost no more than 256.
const MaxDocsPerWrite = 32

// queueWrites queues ws on p, in order, and returns the replies, each covering the next documents
// in ws. On a single server one call writes up to MaxDocsPerWrite documents, since each call has
// a cost of its own in redis-server beside the commands it runs, and appends the feed entries
// that announce them (see feed.Pending): each entry in announced goes in with its issue's
// document, in the order of announced, and only when the document is written. On a cluster the
// documents live in different slots, and the feeds in others, so one call writes each document
// and announced must be empty (the entries are queued before, as feed.Queue does).
func (s *Store[S]) queueWrites(ctx context.Context, p redis.Pipeliner, ws []docWrite, announced []feed.Pending) []*redis.Cmd {
	chunk := MaxDocsPerWrite
	if _, cluster := s.RDB.(*redis.ClusterClient); cluster {
		chunk = 1
	}
	var replies []*redis.Cmd
	for part := range slices.Chunk(ws, chunk) {
		keys := make([]string, 0, 2*len(part)+1)
		docs := make([]any, 0, 3*len(part))
		doc := make(map[string]int, len(part)) // each issue's document, numbered from 1
		for i, w := range part {
			keys = append(keys, s.seqKey(w.id), s.Key(w.id))
			docs = append(docs, w.from, w.to, w.doc)
			doc[w.id] = i + 1
		}
		feeds := map[string]int{} // each feed's place after the documents' keys, from 1
		var caps, entries []any
		for _, e := range announced {
			d := doc[e.Issue]
			if d == 0 {
				continue // another part's document
			}
			f := feeds[e.Feed]
			if f == 0 {
				keys = append(keys, e.Feed)
				caps = append(caps, e.MaxLen, e.Slack())
				f = len(feeds) + 1
				feeds[e.Feed] = f
			}
			fields := e.Fields()
			entries = append(append(entries, d, f, len(fields)), fields...)
		}
		args := append([]any{len(part), len(feeds)}, caps...)
		args = append(append(args, docs...), entries...)
		replies = append(replies, writeDocs.EvalSha(ctx, p, keys, args...))
	}
	return replies
}

// writtenOf reads the replies of queueWrites: for each of its n documents, whether it was written.
func writtenOf(replies []*redis.Cmd, n int) ([]bool, error) {
	done := make([]bool, 0, n)
	for _, r := range replies {
		got, err := r.Int64Slice()
		if err != nil {
			return nil, err
		}
		for _, w := range got {
			done = append(done, w == 1)
		}
	}
	if len(done) != n {
		return nil, fmt.Errorf("the document writes answered for %d documents of %d", len(done), n)
	}
	return done, nil
}

// writeDocs writes each document and its token if the sequence key still holds the token its
// fold started from (a missing key reads as 0, an issue never written), and answers 1 for it; it
// answers 0, writing nothing of that document, when another writer moved the issue meanwhile.
// Then it appends the feed entries of the documents it wrote, in their order, and trims each feed
// it appended to once the feed is its slack past its cap (see feed.Pending).
//
// KEYS[2i-1] the i-th issue's sequence key, KEYS[2i] its document, for n documents; then the
// feeds. ARGV[1] n; ARGV[2] the feeds' count; then each feed's cap and slack; then three arguments
// a document: the token its fold started from, its new token, the document; then each entry: its
// document's number, its feed's number, the count of its fields' names and values, and those.
var writeDocs = redisx.NewScript(`
local n, feeds = tonumber(ARGV[1]), tonumber(ARGV[2])
local docs = 3 + 2 * feeds
local written = {}
for i = 1, n do
  local seq, a = KEYS[2 * i - 1], docs + 3 * (i - 1)
  if (redis.call('GET', seq) or '0') == ARGV[a] then
    redis.call('SET', seq, ARGV[a + 1])
    redis.call('SET', KEYS[2 * i], ARGV[a + 2])
    written[i] = 1
  else
    written[i] = 0
  end
end
local grown = {}
local a = docs + 3 * n
while a <= #ARGV do
  local doc, f, count = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if written[doc] == 1 then
    redis.call('XADD', KEYS[2 * n + f], '*', unpack(ARGV, a + 3, a + 2 + count))
    grown[f] = true
  end
  a = a + 3 + count
end
for f in pairs(grown) do
  local key, cap, slack = KEYS[2 * n + f], tonumber(ARGV[1 + 2 * f]), tonumber(ARGV[2 + 2 * f])
  if redis.call('XLEN', key) - cap >= slack then
    redis.call('XTRIM', key, 'MAXLEN', cap)
  end
end
return written`)

// init prepares the document cache.
func (s *Store[S]) init() {
	s.once.Do(func() {
		s.cache = newDocCache[S](CacheSize)
		s.docs = newDocCache[stored](CacheSize)
	})
}

// forget drops the cached documents of issues whose states a failed batch may have changed.
func (s *Store[S]) forget(ids []string) {
	for _, id := range ids {
		s.drop(id)
	}
}

// drop forgets what the store keeps of an issue.
func (s *Store[S]) drop(id string) {
	s.cache.drop(id)
	s.docs.drop(id)
}

// keep remembers an issue's state, and its document and token as Redis holds them.
func (s *Store[S]) keep(id string, st S, got stored) {
	s.cache.put(id, st)
	s.docs.put(id, got)
}

// lock takes the locks of the issues' stripes, in order, and returns their release.
func (s *Store[S]) lock(ids []string) func() {
	stripes := make([]int, 0, len(ids))
	for _, id := range ids {
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		stripes = append(stripes, int(h.Sum32()%lockStripes))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.locks[i].Lock()
	}
	return func() {
		for _, i := range stripes {
			s.locks[i].Unlock()
		}
	}
}

// newIssues names the issues whose first record in recs is their first event.
func newIssues(recs []eventlog.Record) map[string]bool {
	out := map[string]bool{}
	seen := map[string]bool{}
	for _, rec := range recs {
		id := rec.Event.GetIssueId()
		if !seen[id] {
			seen[id] = true
			out[id] = rec.Event.GetPrevSeq() == 0
		}
	}
	return out
}

// Forget drops the documents the store keeps of a partition's issues, when its consumer's
// ownership of the partition begins anew.
func (s *Store[S]) Forget(partition int) {
	s.init()
	match := func(id string) bool { return eventlog.Partition(id) == partition }
	s.cache.dropWhere(match)
	s.docs.dropWhere(match)
}

// issuesOf lists the issues of recs, each once, in order of first appearance.
func issuesOf(recs []eventlog.Record) []string {
	seen := make(map[string]bool, len(recs))
	var ids []string
	for _, rec := range recs {
		if id := rec.Event.GetIssueId(); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// CacheSize is how many issues' documents a store keeps in memory between writes: the issues in
// flight, whose next event then folds without a read of the document.
const CacheSize = 16384

// docCache keeps recently written documents in two generations: when the young one is full it
// becomes the old one and the previous old one is dropped, so the cache stays within twice its
// size without keeping an order per entry.
type docCache[S any] struct {
	mu         sync.Mutex
	size       int
	young, old map[string]S
}

func newDocCache[S any](size int) *docCache[S] {
	return &docCache[S]{size: size, young: map[string]S{}, old: map[string]S{}}
}

func (c *docCache[S]) get(id string) (S, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.young[id]; ok {
		return st, true
	}
	st, ok := c.old[id]
	if ok {
		c.putLocked(id, st)
	}
	return st, ok
}

func (c *docCache[S]) put(id string, st S) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(id, st)
}

func (c *docCache[S]) putLocked(id string, st S) {
	if len(c.young) >= c.size {
		c.old, c.young = c.young, make(map[string]S, c.size)
	}
	c.young[id] = st
	delete(c.old, id)
}

func (c *docCache[S]) dropWhere(match func(id string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range []map[string]S{c.young, c.old} {
		for id := range m {
			if match(id) {
				delete(m, id)
			}
		}
	}
}

func (c *docCache[S]) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.young, id)
	delete(c.old, id)
}
