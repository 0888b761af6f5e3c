package scorecard

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
)

// Prefix begins every key of the scorecards; it lies within the escalation service's own prefix,
// so its Redis user reaches them and a reset removes them.
const Prefix = "escalation:score:"

// Kind is what a scorecard assesses.
type Kind string

// The kinds of scorecard.
const (
	Department Kind = "department"
	Unit       Kind = "unit"
	Street     Kind = "street"
)

// Index names one sorted set of parts: those of a department, a unit or a street, or, with the
// zero Index, every part.
type Index struct {
	Kind Kind
	ID   string
}

// key is the index's shard of partition n: "escalation:score:by-unit:<unit>:{p3}", or
// "escalation:score:all:{p3}" for every part. Each scores the names of the parts of the
// partition's issues by the unix milliseconds of their dispatch.
func (x Index) key(n int) string {
	if x.Kind == "" {
		return Prefix + "all:" + eventlog.PartitionTag(n)
	}
	return Prefix + "by-" + string(x.Kind) + ":" + x.ID + ":" + eventlog.PartitionTag(n)
}

// indexes are the sorted sets a part is listed in.
func indexes(p *Part) []Index {
	out := []Index{{}, {Kind: Department, ID: p.DepartmentID}, {Kind: Unit, ID: p.UnitID}}
	if p.StreetID != "" {
		out = append(out, Index{Kind: Street, ID: p.StreetID})
	}
	return out
}

// raisedKey is the sorted set of the issues of partition n raised in a street, scored by the
// unix milliseconds of their raise.
func raisedKey(street string, n int) string {
	return Prefix + "raised:" + street + ":" + eventlog.PartitionTag(n)
}

// Fold applies one record to the issue's facts and queues on tx the writes that bring the
// scorecards' indexes in line with them: the raise in its street's whistles, each part it
// dispatched in its indexes, and each part it withdrew out of them all. The facts themselves are
// the issue's document's (see Facts). Every write sets a value the facts determine, so a fold run
// again after a crash between these writes and the document's writes the same. The escalation
// store calls it once per record, after its own fold accepted the record.
func Fold(ctx context.Context, is *Issue, rec eventlog.Record, tx redis.Pipeliner) {
	issueID := rec.Event.GetIssueId()
	n := eventlog.Partition(issueID)
	c := is.Apply(rec)
	if c.Raised && is.StreetID != "" {
		tx.ZAdd(ctx, raisedKey(is.StreetID, n), redis.Z{Score: float64(is.RaisedAt.UnixMilli()), Member: issueID})
	}
	for _, p := range c.Dispatched {
		for _, x := range indexes(p) {
			tx.ZAdd(ctx, x.key(n), redis.Z{Score: float64(p.DispatchedAt.UnixMilli()), Member: p.Name()})
		}
	}
	for _, p := range c.Withdrawn {
		for _, x := range indexes(p) {
			tx.ZRem(ctx, x.key(n), p.Name())
		}
	}
}
