// Package projectiontest checks that an eventlog.Projection keeps the contract written on the
// interface. Every projection, the Redis stores of the services as much as the in-memory ones
// tests use, runs the same suite, so that a fake cannot drift from what the real ones do.
package projectiontest

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/eventlog/quarantine"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// Concurrency is how many goroutines apply one record at once in the concurrency check.
const Concurrency = 8

// Subject is one projection under test, with a way to read back everything it keeps.
type Subject struct {
	eventlog.Projection
	// Dump renders every value the projection keeps, its indexes included, the same way for the
	// same contents, so that the suite can tell a record applied twice (an index entry added
	// twice, a counter moved twice) from a record applied once.
	Dump func(ctx context.Context) (string, error)
}

// MinHistory is how many events a history must hold at least.
const MinHistory = 3

// Run checks the Projection contract on projections made by newSubject, one for each check.
// history returns, for an issue id, a valid sequence of at least MinHistory events of that issue
// which the projection understands, without sequences: Run numbers them itself, as a stream would,
// interleaving issues and leaving sequences of other issues between them, and stores each at the
// time it says it occurred.
func Run(t *testing.T, newSubject func(t *testing.T) Subject, history func(issueID string) []*whistlev1.Event) {
	t.Helper()
	ctx := context.Background()
	newProjection := func(t *testing.T) eventlog.Projection { return newSubject(t) }

	t.Run("an issue never applied has last sequence zero", func(t *testing.T) {
		t.Parallel()
		p := newProjection(t)
		a, b := issueID(t, "A"), issueID(t, "B")
		s := newStream(t, history, a, b)
		wantLast(t, p, a, 0)
		applyAll(t, p, s.recs[b])
		wantLast(t, p, a, 0)
	})

	t.Run("records applied in order advance the last sequence", func(t *testing.T) {
		t.Parallel()
		p := newProjection(t)
		a := issueID(t, "A")
		for _, rec := range newStream(t, history, a).recs[a] {
			if err := p.Apply(ctx, rec); err != nil {
				t.Fatalf("apply %d: %v", rec.Seq, err)
			}
			wantLast(t, p, a, rec.Seq)
		}
	})

	t.Run("re-applying any applied record returns nil and changes nothing", func(t *testing.T) {
		t.Parallel()
		p := newProjection(t)
		a := issueID(t, "A")
		recs := newStream(t, history, a).recs[a]
		for i, rec := range recs {
			if err := p.Apply(ctx, rec); err != nil {
				t.Fatalf("apply %d: %v", rec.Seq, err)
			}
			for _, again := range recs[:i+1] {
				if err := p.Apply(ctx, again); err != nil {
					t.Fatalf("re-applying %d after %d: %v, want nil", again.Seq, rec.Seq, err)
				}
				wantLast(t, p, a, rec.Seq)
			}
		}
	})

	t.Run("an issue's later record before its first is refused with a gap", func(t *testing.T) {
		t.Parallel()
		p := newProjection(t)
		a := issueID(t, "A")
		recs := newStream(t, history, a).recs[a]
		wantGap(t, p, recs[1])
		wantLast(t, p, a, 0)
		applyAll(t, p, recs)
		wantLast(t, p, a, recs[len(recs)-1].Seq)
	})

	t.Run("a record after a missing one is refused with a gap until the missing one is applied", func(t *testing.T) {
		t.Parallel()
		p := newProjection(t)
		a := issueID(t, "A")
		recs := newStream(t, history, a).recs[a]
		n := len(recs)
		missing, next := recs[n-2], recs[n-1]
		applyAll(t, p, recs[:n-2])
		before := uint64(0)
		if n > 2 {
			before = recs[n-3].Seq
		}
		wantGap(t, p, next)
		wantLast(t, p, a, before)
		if err := p.Apply(ctx, missing); err != nil {
			t.Fatalf("applying the missing %d: %v", missing.Seq, err)
		}
		wantLast(t, p, a, missing.Seq)
		if err := p.Apply(ctx, next); err != nil {
			t.Fatalf("applying %d once %d is in: %v", next.Seq, missing.Seq, err)
		}
		wantLast(t, p, a, next.Seq)
	})

	t.Run("two issues interleaved in the stream do not affect each other", func(t *testing.T) {
		t.Parallel()
		p := newProjection(t)
		a, b := issueID(t, "A"), issueID(t, "B")
		s := newStream(t, history, a, b)
		want := map[string]uint64{}
		for _, rec := range s.order {
			issue := rec.Event.GetIssueId()
			if err := p.Apply(ctx, rec); err != nil {
				t.Fatalf("apply %s at %d: %v", issue, rec.Seq, err)
			}
			want[issue] = rec.Seq
			wantLast(t, p, a, want[a])
			wantLast(t, p, b, want[b])
		}
		// A gap in one issue leaves the other free to go on.
		p = newProjection(t)
		applyAll(t, p, s.recs[a][:1])
		wantGap(t, p, s.recs[a][len(s.recs[a])-1])
		applyAll(t, p, s.recs[b])
		wantLast(t, p, a, s.recs[a][0].Seq)
		wantLast(t, p, b, s.recs[b][len(s.recs[b])-1].Seq)
	})

	t.Run("applying every record again leaves everything the projection keeps as it was", func(t *testing.T) {
		t.Parallel()
		p := newSubject(t)
		a, b := issueID(t, "A"), issueID(t, "B")
		s := newStream(t, history, a, b)
		applyAll(t, p, s.order)
		want := dump(t, p)
		for range 2 {
			for i := len(s.order) - 1; i >= 0; i-- { // newest first, as a replica far behind would
				if err := p.Apply(ctx, s.order[i]); err != nil {
					t.Fatalf("re-applying %d: %v, want nil", s.order[i].Seq, err)
				}
			}
			applyAll(t, p, s.order)
		}
		if got := dump(t, p); got != want {
			t.Fatalf("re-applying every record changed what the projection keeps:\n--- once\n%s\n--- again\n%s", want, got)
		}
	})

	t.Run("records applied by several goroutines at once keep what records applied one at a time keep", func(t *testing.T) {
		t.Parallel()
		one, many := newSubject(t), newSubject(t)
		a, b := "contract-A", "contract-B" // the same ids in both, so that the two dumps compare
		s := newStream(t, history, a, b)
		applyAll(t, one, s.order)
		for _, rec := range s.order {
			var wg sync.WaitGroup
			for range Concurrency {
				wg.Go(func() {
					if err := many.Apply(ctx, rec); err != nil {
						t.Errorf("concurrent apply of %d: %v", rec.Seq, err)
					}
				})
			}
			wg.Wait()
		}
		if want, got := dump(t, one), dump(t, many); got != want {
			t.Fatalf("concurrent applies kept something else:\n--- one at a time\n%s\n--- concurrently\n%s", want, got)
		}
	})

	t.Run("a batch keeps what its records applied one at a time keep, redeliveries and owner's trust included", func(t *testing.T) {
		t.Parallel()
		one, batched := newSubject(t), newSubject(t)
		bp, ok := batched.Projection.(eventlog.BatchProjection)
		if !ok {
			t.Skip("the projection applies one record at a time")
		}
		a, b, c := "batch-A", "batch-B", "batch-C" // the same ids in both, so that the two dumps compare
		s := newStream(t, history, a, b, c)
		applyAll(t, one, s.order)
		half := len(s.order) / 2
		// The first half twice in one batch (a redelivery inside a batch), then the whole stream,
		// as the partition's owner applies it (from what it keeps in memory), then all of it again.
		batches := [][]eventlog.Record{append(append([]eventlog.Record{}, s.order[:half]...), s.order[:half]...), s.order, s.order}
		for i, recs := range batches {
			bctx := ctx
			if i == 1 {
				bctx = eventlog.OwnerContext(ctx)
			}
			errs, err := bp.ApplyBatch(bctx, recs)
			if err != nil {
				t.Fatalf("batch %d: %v", i, err)
			}
			for k, err := range errs {
				if err != nil {
					t.Fatalf("batch %d, record %d (seq %d): %v, want nil", i, k, recs[k].Seq, err)
				}
			}
		}
		if want, got := dump(t, one), dump(t, batched); got != want {
			t.Fatalf("batches kept something else:\n--- one at a time\n%s\n--- in batches\n%s", want, got)
		}
	})

	t.Run("an owner's batch refused because another writer went further leaves what the records applied once leave", func(t *testing.T) {
		t.Parallel()
		one, raced := newSubject(t), newSubject(t)
		bp, batches := raced.Projection.(eventlog.BatchProjection)
		pc, caches := raced.Projection.(eventlog.PartitionCache)
		if !batches || !caches {
			t.Skip("the projection keeps no issues in memory for an owner to trust")
		}
		a := "raced-A" // the same id in both, so that the two dumps compare
		s := newStream(t, history, a)
		applyAll(t, one, s.order)
		// Another writer (a catch-up) takes the whole history; the owner, whose ownership begins
		// anew, trusts that the issue is new and folds only its first two events, from the start:
		// its index writes follow the other writer's, from an older state, and its write is refused.
		applyAll(t, raced, s.order)
		pc.Forget(eventlog.Partition(a))
		bctx := eventlog.WithHistory(eventlog.OwnerContext(ctx), s)
		errs, err := bp.ApplyBatch(bctx, s.recs[a][:2])
		if err != nil {
			t.Fatal(err)
		}
		for k, err := range errs {
			if err != nil {
				t.Fatalf("record %d: %v, want nil", s.recs[a][k].Seq, err)
			}
		}
		if want, got := dump(t, one), dump(t, raced); got != want {
			t.Fatalf("the refused owner left something else:\n--- applied once\n%s\n--- raced\n%s", want, got)
		}
	})

	t.Run("a batch refuses with a gap a record after a missing one and every later record of its issue, and applies the rest", func(t *testing.T) {
		t.Parallel()
		p := newSubject(t)
		bp, ok := p.Projection.(eventlog.BatchProjection)
		if !ok {
			t.Skip("the projection applies one record at a time")
		}
		a, b := issueID(t, "A"), issueID(t, "B")
		s := newStream(t, history, a, b)
		var recs []eventlog.Record
		for _, rec := range s.order {
			if rec.Seq != s.recs[a][1].Seq { // a's second event is missing
				recs = append(recs, rec)
			}
		}
		errs, err := bp.ApplyBatch(eventlog.OwnerContext(ctx), recs)
		if err != nil {
			t.Fatal(err)
		}
		for k, rec := range recs {
			gapped := rec.Event.GetIssueId() == a && rec.Seq > s.recs[a][1].Seq
			if gapped != errors.Is(errs[k], eventlog.ErrGap) {
				t.Fatalf("record %d of %s: %v; want a gap: %v", rec.Seq, rec.Event.GetIssueId(), errs[k], gapped)
			}
		}
		wantLast(t, p, a, s.recs[a][0].Seq)
		wantLast(t, p, b, s.recs[b][len(s.recs[b])-1].Seq)
		// The missing one, and the rest after it, apply.
		applyAll(t, p, s.recs[a][1:])
		wantLast(t, p, a, s.recs[a][len(s.recs[a])-1].Seq)
	})

	t.Run("a quarantined issue holds its later records and keeps its state", func(t *testing.T) {
		t.Parallel()
		p := newSubject(t)
		a, b := issueID(t, "A"), issueID(t, "B")
		s := newStream(t, history, a, b)
		recs := s.recs[a]
		applyAll(t, p, recs[:1])
		bad := recs[1]
		mark := quarantine.Mark{Seq: bad.Seq, Subject: "whistle." + a + ".garbage", Reason: "undecodable", StoredAt: bad.Time}
		if err := p.Quarantine(ctx, a, mark); err != nil {
			t.Fatal(err)
		}
		wantQuarantined(t, p, a, bad.Seq, bad.Seq)
		if err := p.Quarantine(ctx, a, mark); err != nil {
			t.Fatalf("marking again: %v", err)
		}
		wantQuarantined(t, p, a, bad.Seq, bad.Seq)
		for _, rec := range recs[2:] {
			if err := p.Apply(ctx, rec); err != nil {
				t.Fatalf("holding %d: %v", rec.Seq, err)
			}
			wantQuarantined(t, p, a, bad.Seq, rec.Seq)
		}
		// The other issue is not held up.
		applyAll(t, p, s.recs[b])
		wantLast(t, p, b, s.recs[b][len(s.recs[b])-1].Seq)
		if pos, err := p.Position(ctx, b); err != nil || pos.Quarantine != nil {
			t.Fatalf("Position(%s) = %+v, %v; want no quarantine", b, pos, err)
		}
		// What the quarantined issue shows is what it showed before the bad event.
		q, held := newSubject(t), newSubject(t)
		c := "contract-C"
		cs := newStream(t, history, c).recs[c]
		applyAll(t, q, cs[:1])
		if err := q.Quarantine(ctx, c, quarantine.Mark{Seq: cs[1].Seq, Reason: "undecodable"}); err != nil {
			t.Fatal(err)
		}
		applyAll(t, held, cs[:1])
		if err := held.Quarantine(ctx, c, quarantine.Mark{Seq: cs[1].Seq, Reason: "undecodable"}); err != nil {
			t.Fatal(err)
		}
		applyAll(t, held, cs[2:])
		if err := q.Quarantine(ctx, c, quarantine.Mark{Seq: cs[len(cs)-1].Seq, Reason: "undecodable"}); err != nil {
			t.Fatal(err)
		}
		if want, got := stripPosition(dump(t, q)), stripPosition(dump(t, held)); got != want {
			t.Fatalf("held records changed the quarantined issue's state:\n--- before\n%s\n--- after holding\n%s", want, got)
		}
	})

	t.Run("one record applied by several goroutines at once is applied once", func(t *testing.T) {
		t.Parallel()
		p := newProjection(t)
		a := issueID(t, "A")
		for _, rec := range newStream(t, history, a).recs[a] {
			errs := make(chan error, Concurrency)
			var wg sync.WaitGroup
			for range Concurrency {
				wg.Go(func() { errs <- p.Apply(ctx, rec) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("concurrent apply of %d: %v, want nil", rec.Seq, err)
				}
			}
			wantLast(t, p, a, rec.Seq)
		}
	})
}

// stream is the records of some issues as one stream holds them.
type stream struct {
	recs  map[string][]eventlog.Record // each issue's records, in order
	order []eventlog.Record            // all records, in stream order
}

// Read gives the issue's records after a sequence, as the event log does (eventlog.History).
func (s stream) Read(_ context.Context, issueID string, after uint64) ([]eventlog.Record, error) {
	var out []eventlog.Record
	for _, rec := range s.recs[issueID] {
		if rec.Seq > after {
			out = append(out, rec)
		}
	}
	return out, nil
}

// epoch is the time the stream stamps on its first record.
var epoch = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// newStream numbers the histories of issues as a stream would: round robin, one event of each
// issue in turn, with a gap of sequences (other issues' events) before each.
func newStream(t *testing.T, history func(issueID string) []*whistlev1.Event, issues ...string) stream {
	t.Helper()
	s := stream{recs: map[string][]eventlog.Record{}}
	evs := map[string][]*whistlev1.Event{}
	longest := 0
	for _, id := range issues {
		h := history(id)
		if len(h) < MinHistory {
			t.Fatalf("history(%q) has %d events; the contract needs at least %d", id, len(h), MinHistory)
		}
		for _, ev := range h {
			if ev.GetIssueId() != id {
				t.Fatalf("history(%q) returned an event of issue %q", id, ev.GetIssueId())
			}
		}
		evs[id], longest = h, max(longest, len(h))
	}
	seq, prev := uint64(0), map[string]uint64{}
	for i := range longest {
		for _, issue := range issues {
			if i >= len(evs[issue]) {
				continue
			}
			seq += uint64(1 + len(s.order)%3) // sequences of issues not in this stream lie between
			ev := proto.CloneOf(evs[issue][i])
			ev.PrevSeq = prev[issue]
			prev[issue] = seq
			// The stream stores each event when its history says it happened; a history without
			// times is stored a second apart.
			at := epoch.Add(time.Duration(seq) * time.Second)
			if ev.GetOccurredAt().IsValid() {
				at = ev.GetOccurredAt().AsTime()
			}
			rec := eventlog.Record{Seq: seq, Time: at, Event: ev}
			s.recs[issue] = append(s.recs[issue], rec)
			s.order = append(s.order, rec)
		}
	}
	return s
}

// issueID is the id of the issue a check calls name. It carries the check's name, so that
// checks whose projections share one store cannot meet each other's issues.
func issueID(t *testing.T, name string) string { return t.Name() + "/" + name }

// applyAll applies recs in order, each of which must succeed.
func applyAll(t *testing.T, p eventlog.Projection, recs []eventlog.Record) {
	t.Helper()
	for _, rec := range recs {
		if err := p.Apply(context.Background(), rec); err != nil {
			t.Fatalf("apply %s at %d: %v", rec.Event.GetIssueId(), rec.Seq, err)
		}
	}
}

// wantGap applies rec, which must be refused with an error wrapping eventlog.ErrGap.
func wantGap(t *testing.T, p eventlog.Projection, rec eventlog.Record) {
	t.Helper()
	if err := p.Apply(context.Background(), rec); !errors.Is(err, eventlog.ErrGap) {
		t.Fatalf("apply %d following %d: %v, want an error wrapping ErrGap", rec.Seq, rec.Event.GetPrevSeq(), err)
	}
}

// wantLast checks the issue's last applied sequence.
func wantLast(t *testing.T, p eventlog.Projection, id string, want uint64) {
	t.Helper()
	got, err := p.Position(context.Background(), id)
	if err != nil || got.LastSeq != want {
		t.Fatalf("Position(%s).LastSeq = %d, %v; want %d", id, got.LastSeq, err, want)
	}
}

// wantQuarantined checks that the issue is quarantined at seq and has taken everything up to last.
func wantQuarantined(t *testing.T, p eventlog.Projection, id string, seq, last uint64) {
	t.Helper()
	got, err := p.Position(context.Background(), id)
	if err != nil || got.LastSeq != last || got.Quarantine == nil || got.Quarantine.Seq != seq {
		t.Fatalf("Position(%s) = %+v (quarantine %+v), %v; want quarantined at %d, last %d", id, got, got.Quarantine, err, seq, last)
	}
}

// dump renders what s keeps.
func dump(t *testing.T, s Subject) string {
	t.Helper()
	d, err := s.Dump(context.Background())
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return d
}

// positionFields matches what a dump shows of an issue's position, which holding records moves.
var positionFields = regexp.MustCompile(`"(last_seq|held|seq)":\d+`)

// stripPosition removes the position from a dump, leaving the state.
func stripPosition(d string) string { return positionFields.ReplaceAllString(d, "") }
