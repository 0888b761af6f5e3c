// Package app is routing's application layer: the reaction that routes each raised issue, and the
// dry run that explains a route.
package app

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/routing/internal/domain"
	"github.com/whistle-dispatch/whistle/services/routing/internal/store"
)

const scope = "github.com/whistle-dispatch/whistle/services/routing"

var (
	tracer       = otel.Tracer(scope)
	decisions, _ = otel.Meter(scope).Int64Counter("whistle.routing.decisions",
		metric.WithDescription("Issues routing decided, by outcome: routed or needs-dispatch."))
)

// actor is who routing's own events are by.
var actor = &whistlev1.Actor{Subject: "routing", Role: "service"}

// App routes issues by the rules table.
type App struct {
	log   *eventlog.Log
	store *store.Store
	cat   *catalog.Catalog
	rules *domain.Rules
	clock clock.Clock
}

// New returns the application.
func New(log *eventlog.Log, st *store.Store, cat *catalog.Catalog, rules *domain.Rules, clk clock.Clock) *App {
	return &App{log: log, store: st, cat: cat, rules: rules, clock: clk}
}

// Planned is one department a route summons, with the SLA policy it gets.
type Planned struct {
	Department string
	Role       whistlev1.AssignmentRole
	Policy     catalog.Policy
}

// Plan is where routing sends an issue of a category in a street, and why.
type Plan struct {
	Matched     bool
	RuleID      string
	Street      string
	Explanation string
	Assignments []Planned // lead first
}

// plan applies the rules to an issue of a category in a street at an urgency.
func (a *App) plan(street, category string, urgency whistlev1.Urgency) Plan {
	catName, streetName := a.name(category), a.name(street)
	r, ok := a.rules.Match(category, street)
	if !ok {
		return Plan{Street: street, Explanation: fmt.Sprintf("no rule covers %s issues in %s: a dispatcher must route it", catName, streetName)}
	}
	k, _ := a.cat.Category(category) // the rules were checked against the catalog
	p := Plan{Matched: true, RuleID: r.ID, Street: street}
	for i, d := range r.Departments() {
		role := whistlev1.AssignmentRole_ASSIGNMENT_ROLE_ASSISTING
		if i == 0 {
			role = whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD
		}
		p.Assignments = append(p.Assignments, Planned{Department: d, Role: role, Policy: k.Policy(urgency)})
	}
	where := "any street"
	if r.Street != "" {
		where = streetName
	}
	p.Explanation = fmt.Sprintf("rule %q sends %s issues in %s to %s (lead)", r.ID, catName, where, a.deptName(r.Lead))
	if len(r.Assisting) > 0 {
		names := make([]string, len(r.Assisting))
		for i, d := range r.Assisting {
			names[i] = a.deptName(d)
		}
		p.Explanation += ", with " + strings.Join(names, " and ") + " assisting"
	}
	return p
}

// name is a category's or an area's name for people, or its id when the catalog lacks it.
func (a *App) name(id string) string {
	if k, err := a.cat.Category(id); err == nil {
		return fmt.Sprintf("%q", k.Name)
	}
	if ar, err := a.cat.Area(id); err == nil {
		return ar.Name
	}
	return fmt.Sprintf("%q", id)
}

// deptName is a department's name for people, or its id when the catalog lacks it.
func (a *App) deptName(id string) string {
	if d, err := a.cat.Department(id); err == nil {
		return d.Name
	}
	return id
}

// Explain is the dry run of routing an issue: it validates the request and returns the plan,
// writing nothing.
func (a *App) Explain(ctx context.Context, grid, category string, urgency whistlev1.Urgency) (Plan, error) {
	_, span := tracer.Start(ctx, "app.App.Explain")
	defer span.End()
	if err := apiedge.CheckID("grid_id", grid, true); err != nil {
		return Plan{}, err
	}
	_, _, street, err := a.cat.Grid(grid)
	if err != nil {
		return Plan{}, apiedge.Invalid("grid_id", "no grid %q in the catalog", grid)
	}
	if err := apiedge.CheckID("category_id", category, true); err != nil {
		return Plan{}, err
	}
	if _, err := a.cat.Category(category); err != nil {
		return Plan{}, apiedge.Invalid("category_id", "no category %q in the catalog", category)
	}
	if _, ok := whistlev1.Urgency_name[int32(urgency)]; !ok {
		return Plan{}, apiedge.Invalid("urgency", "unknown value %d", urgency)
	}
	return a.plan(street.ID, category, urgency), nil
}

// ReactsTo names the events React acts on: only a raise leaves an issue awaiting its route.
var ReactsTo = []string{"raised"}

// React routes the record's issue if it was raised and not yet routed. It is the consumer's
// reaction, so it runs again on redelivery and on replay: the projection then already knows the
// decision, or the conditional append loses to the event already in the stream, and nothing is
// appended twice.
func (a *App) React(ctx context.Context, rec eventlog.Record) error {
	if _, raised := rec.Event.GetPayload().(*whistlev1.Event_Raised); !raised {
		return nil // only a raise leaves an issue awaiting its route
	}
	id := rec.Event.GetIssueId()
	st, err := a.store.Current(ctx, id) // the consumer that runs this reaction just wrote it
	if err != nil || !st.AwaitsDecision() {
		return err
	}
	ctx, span := tracer.Start(ctx, "app.App.React", traceIssue(id))
	defer span.End()
	out, err := a.log.Decide(ctx, a.store, id, func(ctx context.Context) (*whistlev1.Event, error) {
		st, err := a.store.Current(ctx, id)
		if err != nil || !st.AwaitsDecision() {
			return nil, err
		}
		return a.decide(st, id), nil
	})
	if err != nil {
		return fmt.Errorf("route %s: %w", id, err)
	}
	if out != nil {
		decisions.Add(ctx, 1, otelx.Attributes("outcome", eventlog.Kind(out.Event)))
	}
	return nil
}

// decide builds the routing event for an issue that awaits it, with every policy frozen now and
// every deadline counted from the raise.
func (a *App) decide(st domain.Issue, id string) *whistlev1.Event {
	// Deadlines run from the time the stream stored the raise, not from now: the time an issue
	// waited to be routed counts against them, and no service's clock moves them.
	raisedAt := st.RaisedAt
	street := st.Street
	if street == "" { // an issue raised without its street: find it from the grid
		if _, _, s, err := a.cat.Grid(st.Grid); err == nil {
			street = s.ID
		}
	}
	ev := &whistlev1.Event{
		IssueId:       id,
		OccurredAt:    timestamppb.New(a.clock.Now()),
		PrevSeq:       st.LastSeq,
		Actor:         actor,
		CorrelationId: st.CorrelationID,
	}
	p := a.plan(street, st.Category, whistlev1.Urgency(st.Urgency))
	if !p.Matched {
		ev.Payload = &whistlev1.Event_NeedsDispatch{NeedsDispatch: &whistlev1.IssueNeedsDispatch{Reason: p.Explanation}}
		return ev
	}
	routed := &whistlev1.IssueRouted{RuleId: p.RuleID}
	for _, pa := range p.Assignments {
		routed.Dispatches = append(routed.Dispatches, &whistlev1.Dispatch{
			DepartmentId: pa.Department,
			Role:         pa.Role,
			Policy:       SLAPolicy(pa.Policy),
			ReportInBy:   timestamppb.New(raisedAt.Add(pa.Policy.ReportIn)),
			ResolveBy:    timestamppb.New(raisedAt.Add(pa.Policy.Resolve)),
		})
	}
	ev.Payload = &whistlev1.Event_Routed{Routed: routed}
	return ev
}

// SLAPolicy is a catalog policy in the API's terms.
func SLAPolicy(p catalog.Policy) *whistlev1.SlaPolicy {
	return &whistlev1.SlaPolicy{ReportInWithin: durationpb.New(p.ReportIn), ResolveWithin: durationpb.New(p.Resolve)}
}

// traceIssue tags a span with the issue it works on.
func traceIssue(id string) trace.SpanStartOption {
	return trace.WithAttributes(attribute.String("whistle.issue", id))
}
