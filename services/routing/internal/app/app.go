// Package app is routing's application layer: the reaction that routes each raised issue by the
// rules in force, the dry run that explains a route, and the reloading of the rules.
package app

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/routing/internal/domain"
	"github.com/whistle-dispatch/whistle/services/routing/internal/store"
)

const scope = "github.com/whistle-dispatch/whistle/services/routing"

var (
	tracer       = otel.Tracer(scope)
	decisions, _ = otel.Meter(scope).Int64Counter("whistle.routing.decisions",
		metric.WithDescription("Issues routing decided, by outcome: routed or needs-dispatch."))
	reloads, _ = otel.Meter(scope).Int64Counter("whistle.routing.reloads",
		metric.WithDescription("Attempts to reload the rules and catalog, by outcome: reloaded, unchanged or refused."))
)

// actor is who routing's own events are by.
var actor = &whistlev1.Actor{Subject: "routing", Role: "service"}

// App routes issues by the rules table.
type App struct {
	log    *eventlog.Log
	store  *store.Store
	tables *Tables
	clock  clock.Clock
}

// New returns the application.
func New(log *eventlog.Log, st *store.Store, tables *Tables, clk clock.Clock) *App {
	return &App{log: log, store: st, tables: tables, clock: clk}
}

// Now is the time by the service's clock.
func (a *App) Now() time.Time { return a.clock.Now() }

// Tables returns the rules in force and their reloading.
func (a *App) Tables() *Tables { return a.tables }

// Planned is one unit a route summons, with the SLA policy it gets.
type Planned struct {
	Department, Unit string
	Role             whistlev1.AssignmentRole
	Policy           catalog.Policy
}

// Plan is where routing sends an issue, and why, by the rules in force.
type Plan struct {
	domain.Route
	Grid, Street string
	Version      string
	Assignments  []Planned // lead first
}

// plan applies the rules in force to a case, leaving out the departments in without.
func plan(l *Loaded, c domain.Case, without []string) Plan {
	rt := l.Table.Route(l.Catalog, c, without)
	p := Plan{Route: rt, Grid: c.Grid, Version: l.Table.Version()}
	if _, _, street, err := l.Catalog.Grid(c.Grid); err == nil {
		p.Street = street.ID
	}
	k, _ := l.Catalog.Category(c.Category)
	for _, s := range rt.Summons {
		p.Assignments = append(p.Assignments, Planned{Department: s.Department, Unit: s.Unit, Role: s.Role, Policy: k.Policy(c.Urgency)})
	}
	return p
}

// Hypothesis is an issue to explain the route of: a real one by its case number, or one described
// by its grid (or a point), category, urgency, text and the instant it would be raised.
type Hypothesis struct {
	IssueID             string
	Grid, Category      string
	Urgency             whistlev1.Urgency
	Text                string
	Latitude, Longitude float64
	HasPoint            bool
	At                  time.Time
}

// Explain is the dry run of routing an issue: it validates the request and returns the plan,
// with every rule tried, writing nothing.
func (a *App) Explain(ctx context.Context, h Hypothesis) (Plan, error) {
	_, span := tracer.Start(ctx, "app.App.Explain")
	defer span.End()
	l := a.tables.Current()
	if h.IssueID != "" {
		id, err := casenum.Normalize(h.IssueID)
		if err != nil {
			return Plan{}, apiedge.Invalid("issue_id", "%v", err)
		}
		st, err := a.store.Get(ctx, id)
		if err != nil {
			return Plan{}, err
		}
		if !st.Raised {
			return Plan{}, fmt.Errorf("issue %s: %w", id, ErrNotFound)
		}
		return firstPlan(l, st.Case()), nil
	}
	c, err := a.hypothesis(l.Catalog, h)
	if err != nil {
		return Plan{}, err
	}
	return firstPlan(l, c), nil
}

// firstPlan is where a new issue goes: its grid's worker for a grid matter, else the rules' route.
func firstPlan(l *Loaded, c domain.Case) Plan {
	if !l.Table.GridMatter(c.Category) {
		return plan(l, c, nil)
	}
	p := Plan{Grid: c.Grid, Version: l.Table.Version()}
	if _, _, street, err := l.Catalog.Grid(c.Grid); err == nil {
		p.Street = street.ID
	}
	within := l.Table.GridMatters.Within
	p.Outcome = domain.ToGrid
	p.Explanation = fmt.Sprintf("%s is a grid matter: the worker of %s has %s to resolve it before it whistles to departments", c.Category, c.Grid, within)
	p.Assignments = []Planned{{Department: catalog.GridDepartment, Unit: c.Grid, Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD,
		Policy: catalog.Policy{Resolve: within}}}
	return p
}

// hypothesis checks a described issue and reads it as a case.
func (a *App) hypothesis(cat *catalog.Catalog, h Hypothesis) (domain.Case, error) {
	c := domain.Case{Grid: h.Grid, Category: h.Category, Urgency: h.Urgency, Text: h.Text, At: h.At}
	if h.HasPoint && c.Grid == "" {
		grid, _, err := Locate(cat, h.Latitude, h.Longitude)
		if err != nil {
			return c, err
		}
		c.Grid = grid
	}
	if err := apiedge.CheckID("grid_id", c.Grid, true); err != nil {
		return c, err
	}
	if _, _, _, err := cat.Grid(c.Grid); err != nil {
		return c, apiedge.Invalid("grid_id", "no grid %q in the catalog", c.Grid)
	}
	if err := apiedge.CheckID("category_id", c.Category, true); err != nil {
		return c, err
	}
	if _, err := cat.Category(c.Category); err != nil {
		return c, apiedge.Invalid("category_id", "no category %q in the catalog", c.Category)
	}
	if _, ok := whistlev1.Urgency_name[int32(c.Urgency)]; !ok {
		return c, apiedge.Invalid("urgency", "unknown value %d", c.Urgency)
	}
	if err := apiedge.CheckUTF8("text", c.Text); err != nil {
		return c, err
	}
	if utf8.RuneCountInString(c.Text) > MaxTextLength {
		return c, apiedge.Invalid("text", "at most %d characters", MaxTextLength)
	}
	if c.At.IsZero() {
		c.At = a.clock.Now()
	}
	return c, nil
}

// MaxTextLength bounds the text of a hypothetical issue, as intake bounds a raise's.
const MaxTextLength = 2000

// ErrNotFound means an issue routing has never seen.
var ErrNotFound = errors.New("not found")

// Locate finds the grid that contains a point, and the compound if any; a point outside every
// grid is NotFound naming the nearest, and coordinates out of range are InvalidArgument.
func Locate(cat *catalog.Catalog, latitude, longitude float64) (grid, compound string, err error) {
	if math.IsNaN(latitude) || latitude < -90 || latitude > 90 {
		return "", "", apiedge.Invalid("latitude", "must be -90 to 90 degrees")
	}
	if math.IsNaN(longitude) || longitude < -180 || longitude > 180 {
		return "", "", apiedge.Invalid("longitude", "must be -180 to 180 degrees")
	}
	grid, compound, err = cat.Locate(latitude, longitude)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return grid, compound, nil
}

// LocateGrid finds the grid (and compound) that contains a point, with the areas above the grid.
func (a *App) LocateGrid(latitude, longitude float64) (grid, community, street catalog.Area, compound string, err error) {
	cat := a.tables.Current().Catalog
	id, compound, err := Locate(cat, latitude, longitude)
	if err != nil {
		return grid, community, street, "", err
	}
	grid, community, street, err = cat.Grid(id)
	return grid, community, street, compound, err
}

// SLAPolicy is a catalog policy in the API's terms.
func SLAPolicy(p catalog.Policy) *whistlev1.SlaPolicy {
	return assignmentpb.PolicyProto(p)
}

// traceIssue tags a span with the issue it works on.
func traceIssue(id string) trace.SpanStartOption {
	return trace.WithAttributes(attribute.String("whistle.issue", id))
}

// Reload puts the rules and catalog files in force again if they pass every check; see
// Tables.Reload. Every attempt is logged and counted by outcome.
func (a *App) Reload(ctx context.Context) (*Loaded, bool, error) {
	l, changed, err := a.tables.Reload(a.clock.Now())
	outcome := "unchanged"
	switch {
	case err != nil:
		outcome = "refused"
	case changed:
		outcome = "reloaded"
	}
	reloads.Add(ctx, 1, otelx.Attributes("outcome", outcome))
	return l, changed, err
}
