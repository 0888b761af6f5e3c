package scorecard

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
)

// A period's parts are found by the index and their facts read from the issues' documents a batch
// at a time: every part comes back once, no read asks for more than readBatch issues, and a part
// whose document holds it withdrawn, or whose document is gone, is left out.
func TestAPeriodsFactsAreReadABatchOfIssuesAtATime(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rdb := redistest.Client(t, redistest.Run(t))
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	const n = 2*readBatch + 7
	docs := map[string]*Issue{}
	for i := range n {
		id := fmt.Sprintf("BTCH-%05d", i)
		p := &Part{IssueID: id, Seq: 2, UnitID: "water", DepartmentID: "water", DispatchedAt: at}
		if err := rdb.ZAdd(ctx, Index{}.key(eventlog.Partition(id)), redis.Z{Score: float64(at.UnixMilli()), Member: p.Name()}).Err(); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 3:
			p.Withdrawn = true
		case 4:
			continue // no document
		}
		docs[id] = &Issue{Parts: []*Part{p}}
	}
	var asked []int
	facts := func(_ context.Context, ids []string) (map[string]*Issue, error) {
		asked = append(asked, len(ids))
		out := map[string]*Issue{}
		for _, id := range ids {
			if is, ok := docs[id]; ok {
				out[id] = is
			}
		}
		return out, nil
	}
	got, err := NewReader(rdb, facts).Read(ctx, Index{}, nil, at, at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 3 || asked[0] != readBatch || asked[1] != readBatch || asked[2] != 7 {
		t.Fatalf("read the documents in batches of %v, want %d, %d and 7", asked, readBatch, readBatch)
	}
	seen := map[string]bool{}
	for _, p := range got.Parts {
		if seen[p.Name()] || p.IssueID == "BTCH-00003" || p.IssueID == "BTCH-00004" {
			t.Fatalf("part %s came back twice, or withdrawn, or without its document", p.Name())
		}
		seen[p.Name()] = true
	}
	if len(seen) != n-2 {
		t.Fatalf("%d parts came back, want %d", len(seen), n-2)
	}
}
