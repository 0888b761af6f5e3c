package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// Stage is one step of the closed loop's lifecycles, timed for each lifecycle as far as its lead
// department: from one moment to the next of those the stream stored (the raise, the route, the
// lead's acknowledgement and resolve) and, when the bench shares the stream's clock, those the
// bench saw (the raise sent, the lead's assignment on its officer's inbox watch).
type Stage struct {
	// Name says which service or person the stage is, and between which two moments.
	Name string
	// Clocks says whose clocks its two moments are read on: the stream's (the times the NATS
	// server stored the events), the bench's, or one of each.
	Clocks string
	// Times holds the stage's time for each lifecycle.
	Times []time.Duration
	// Whole marks the stage that spans every other: the stages before it split it.
	Whole bool
}

// RoutingStage names the stage that is routing's work: from the raise stored to the route stored.
const RoutingStage = "routing: raised stored → routed stored"

// lifecycleMoments are the moments of one lifecycle the stages run between.
type lifecycleMoments struct {
	sent, inbox                     time.Time // the bench's clock
	raised, routed, acked, resolved time.Time // the stream's clock
}

// timeStages reads the closed loop's events (stream sequences from+1 to to) and times the stages
// of each of its lifecycles, ids, whose raise and inbox times tr holds. The stages that mix the
// bench's clock with the stream's are timed only when shared says the two are one clock (a
// system this process runs); otherwise the stream's own stages stand in for them. It returns the
// stages and how many lifecycles it could not time, lacking an event.
func timeStages(ctx context.Context, js jetstream.JetStream, from, to uint64, ids []string, tr *tracker, shared bool) ([]Stage, int, error) {
	issues, err := readIssues(ctx, js, from, to)
	if err != nil {
		return nil, 0, err
	}
	byIssue := make(map[string][]floorEvent, len(issues))
	for _, evs := range issues {
		byIssue[evs[0].issue] = evs
	}
	var stages []Stage
	if shared {
		stages = []Stage{
			{Name: "intake: RaiseIssue sent → raised stored", Clocks: "bench → stream"},
			{Name: RoutingStage, Clocks: "stream"},
			{Name: "department: routed stored → the lead's assignment on its officer's inbox watch", Clocks: "stream → bench"},
			{Name: "officer reports in: on the watch → acknowledged stored", Clocks: "bench → stream"},
			{Name: "officer resolves: acknowledged stored → resolved stored", Clocks: "stream"},
			{Name: "the whole: RaiseIssue sent → the lead's resolved stored", Clocks: "bench → stream", Whole: true},
		}
	} else {
		stages = []Stage{
			{Name: RoutingStage, Clocks: "stream"},
			{Name: "department and officer: routed stored → the lead's acknowledged stored", Clocks: "stream"},
			{Name: "officer resolves: acknowledged stored → resolved stored", Clocks: "stream"},
			{Name: "the whole: raised stored → the lead's resolved stored", Clocks: "stream", Whole: true},
		}
	}
	untimed := 0
	for _, id := range ids {
		m, ok := moments(byIssue[id])
		if !ok {
			untimed++
			continue
		}
		tr.mu.Lock()
		m.sent, m.inbox = tr.issues[id].start, tr.issues[id].inbox
		tr.mu.Unlock()
		var times []time.Duration
		if shared {
			times = []time.Duration{m.raised.Sub(m.sent), m.routed.Sub(m.raised), m.inbox.Sub(m.routed),
				m.acked.Sub(m.inbox), m.resolved.Sub(m.acked), m.resolved.Sub(m.sent)}
		} else {
			times = []time.Duration{m.routed.Sub(m.raised), m.acked.Sub(m.routed), m.resolved.Sub(m.acked), m.resolved.Sub(m.raised)}
		}
		for i, d := range times {
			stages[i].Times = append(stages[i].Times, d)
		}
	}
	return stages, untimed, nil
}

// moments finds, in one issue's events, when the stream stored its raise, its route, and its lead
// department's acknowledgement and resolve; it reports false when one is missing.
func moments(evs []floorEvent) (lifecycleMoments, bool) {
	var m lifecycleMoments
	lead := ""
	for _, e := range evs {
		ev := &whistlev1.Event{}
		if proto.Unmarshal(e.data, ev) != nil {
			return m, false
		}
		switch p := ev.GetPayload().(type) {
		case *whistlev1.Event_Raised:
			m.raised = e.stored
		case *whistlev1.Event_Routed:
			m.routed = e.stored
			for _, d := range p.Routed.GetDispatches() {
				if d.GetRole() == whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD {
					lead = d.GetUnitId()
				}
			}
		case *whistlev1.Event_Acknowledged:
			if lead != "" && p.Acknowledged.GetUnitId() == lead {
				m.acked = e.stored
			}
		case *whistlev1.Event_Resolved:
			if lead != "" && p.Resolved.GetUnitId() == lead {
				m.resolved = e.stored
			}
		}
	}
	ok := !m.raised.IsZero() && !m.routed.IsZero() && !m.acked.IsZero() && !m.resolved.IsZero()
	return m, ok
}

// printStages writes the stages as a markdown table, p50 and p99 and each stage's share of the
// whole's mean (the stages split the whole, so their means add up to its mean), then says which
// stage is the slowest and where routing's ranks.
func (r *Result) printStages(w io.Writer) error {
	if len(r.Stages) == 0 {
		if r.StagesMissing == "" {
			return nil
		}
		_, err := fmt.Fprintf(w, "stages: not measured: %s\n\n", r.StagesMissing)
		return err
	}
	var whole time.Duration
	for _, s := range r.Stages {
		if s.Whole {
			whole = mean(s.Times)
		}
	}
	rows := make([][]string, 0, len(r.Stages))
	for _, s := range r.Stages {
		share := "—"
		if whole > 0 {
			share = fmt.Sprintf("%.1f %%", 100*float64(mean(s.Times))/float64(whole))
		}
		rows = append(rows, []string{s.Name, s.Clocks, ms(Percentile(s.Times, 50)), ms(Percentile(s.Times, 99)), share})
	}
	header := []string{fmt.Sprintf("stage of a closed-loop lifecycle, as far as its lead department (%d lifecycles)", len(r.Stages[0].Times)),
		"clocks", "p50", "p99", "share of the whole's mean"}
	if err := printTable(w, header, rows); err != nil {
		return err
	}
	parts := slices.DeleteFunc(slices.Clone(r.Stages), func(s Stage) bool { return s.Whole })
	slowest50, rank50 := rankRouting(parts, 50)
	slowest99, rank99 := rankRouting(parts, 99)
	if _, err := fmt.Fprintf(w, "\nslowest stage at p50: %s; at p99: %s; routing's stage ranks %d of %d at p50 and %d of %d at p99 (1 is the slowest)\n",
		slowest50, slowest99, rank50, len(parts), rank99, len(parts)); err != nil {
		return err
	}
	if r.StagesUntimed > 0 {
		if _, err := fmt.Fprintf(w, "%d lifecycles lacked an event of their lead department in the stream and are not in the stages\n", r.StagesUntimed); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

// rankRouting returns the slowest of stages at percentile p and the rank of RoutingStage among
// them, 1 being the slowest; 0 when routing's stage is not among them.
func rankRouting(stages []Stage, p float64) (slowest string, rank int) {
	sorted := slices.Clone(stages)
	slices.SortStableFunc(sorted, func(a, b Stage) int {
		return cmp.Compare(Percentile(b.Times, p), Percentile(a.Times, p))
	})
	for i, s := range sorted {
		if s.Name == RoutingStage {
			rank = i + 1
		}
	}
	return sorted[0].Name, rank
}

// mean is the mean of ds, 0 for none.
func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}
