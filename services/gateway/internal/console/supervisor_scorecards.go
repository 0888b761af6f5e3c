package console

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// svScorecardKinds are the groupings the scorecards' form offers, by the form's value, in the
// form's order.
var svScorecardKinds = []struct {
	value, label string
	kind         whistlev1.ScorecardKind
}{
	{"department", "supervisor.scorecards.by_department", whistlev1.ScorecardKind_SCORECARD_KIND_DEPARTMENT},
	{"street", "supervisor.scorecards.by_street", whistlev1.ScorecardKind_SCORECARD_KIND_STREET},
	{"unit", "supervisor.scorecards.by_unit", whistlev1.ScorecardKind_SCORECARD_KIND_UNIT},
}

// svDefaultDays is the period the scorecards show before one is chosen: the last week, today
// included.
const svDefaultDays = 7

// svScorecardPage is what the scorecards' template is given.
type svScorecardPage struct {
	Nav supervisorNav
	// The form's fields as the person gave them (or their defaults).
	Kind, From, To string
	Kinds          []svOption
	// Shown is set once figures were read: a refused form shows none.
	Shown     bool
	Cards     []svCardView
	MinSample uint32
	// Area names the area the figures are limited to; empty when they are not.
	Area   string
	Street bool // streets have whistles (issues raised) of their own
	Chart  svChart
}

// svCardView is one scorecard as the table shows it.
type svCardView struct {
	ID, Name, Rank                                 string
	Small                                          bool
	Dispatched, Returns, Urges, Whistles, Breaches uint32
	Rates                                          []svRateView // response, on-time report-in, resolution, on-time resolution, satisfaction
	MedianAck, P90Ack, MedianResolve, P90Resolve   string
	Levels, Extensions                             string
}

// svRateView is a rate as a percentage and as the fraction it is.
type svRateView struct{ Percent, Fraction string }

// svChart is the chart's data, which supervisor.js reads from the page's JSON block and
// draws: one bar per subject and series, in percent.
type svChart struct {
	Labels []string        `json:"labels"`
	Series []svChartSeries `json:"series"`
	Axis   string          `json:"axis"`
}

// svChartSeries is one figure of every subject; null where the figure has no denominator.
type svChartSeries struct {
	Label  string     `json:"label"`
	Values []*float64 `json:"values"`
}

// svScorecards shows the scorecards of departments, streets or units over a period the person
// chooses, with a chart of their resolution rates.
func (c *Console) svScorecards(q *request) {
	l, v := q.lang, q.r.URL.Query()
	today := c.svToday()
	p := svScorecardPage{Nav: q.svNav("scorecards"), Kind: cmp.Or(strings.TrimSpace(v.Get("kind")), svScorecardKinds[0].value),
		From: cmp.Or(strings.TrimSpace(v.Get("from")), today.AddDate(0, 0, 1-svDefaultDays).Format(svDateLayout)),
		To:   cmp.Or(strings.TrimSpace(v.Get("to")), today.Format(svDateLayout))}
	kind := whistlev1.ScorecardKind_SCORECARD_KIND_UNSPECIFIED
	for _, k := range svScorecardKinds {
		p.Kinds = append(p.Kinds, svOption{Value: k.value, Label: l.T(k.label), Selected: k.value == p.Kind})
		if k.value == p.Kind {
			kind = k.kind
		}
	}
	from, until, msg := c.svPeriod(l, p.From, p.To)
	switch {
	case msg != "":
	case kind == whistlev1.ScorecardKind_SCORECARD_KIND_UNSPECIFIED:
		msg = l.T("supervisor.invalid.choice", l.T("supervisor.field.kind"))
	case from.IsZero() || until.IsZero():
		msg = l.T("supervisor.invalid.period_required")
	case until.Sub(from) > svMaxPeriod:
		msg = l.T("supervisor.invalid.period_too_long", int(svMaxPeriod.Hours()/24))
	}
	if msg != "" {
		c.render(q.w, http.StatusBadRequest, "supervisor-scorecards.html", page{L: l, Session: &q.session, Path: q.r.URL.RequestURI(), Error: msg, Data: p})
		return
	}
	resp, err := whistlev1.NewEscalationServiceClient(c.cfg.Conn).GetScorecards(q.r.Context(), &whistlev1.GetScorecardsRequest{Kind: kind,
		From: timestamppb.New(from), Until: timestamppb.New(until)}, q.call())
	if err != nil {
		if code, msg, ok := refusal(q.lang, err); ok {
			c.render(q.w, code, "supervisor-scorecards.html", page{L: l, Session: &q.session, Path: q.r.URL.RequestURI(), Error: msg, Data: p})
			return
		}
		c.fail(q.w, q.r, l, &q.session, err)
		return
	}
	d := c.svDirectory(q)
	p.Shown, p.MinSample, p.Street = true, resp.GetMinSample(), kind == whistlev1.ScorecardKind_SCORECARD_KIND_STREET
	if a := resp.GetAreaId(); a != "" {
		p.Area = d.name(a)
	}
	p.Chart = svChart{Axis: l.T("supervisor.chart.axis"), Series: []svChartSeries{
		{Label: l.T("supervisor.card.on_time_resolution")}, {Label: l.T("supervisor.card.resolution")}}}
	for _, s := range resp.GetScorecards() {
		cv := c.svCard(l, d, s)
		p.Cards = append(p.Cards, cv)
		label := cv.Name
		if cv.Small {
			label = l.T("supervisor.chart.small", cv.Name)
		}
		p.Chart.Labels = append(p.Chart.Labels, label)
		p.Chart.Series[0].Values = append(p.Chart.Series[0].Values, svPercent(s.GetOnTimeResolutionRate()))
		p.Chart.Series[1].Values = append(p.Chart.Series[1].Values, svPercent(s.GetResolutionRate()))
	}
	c.render(q.w, http.StatusOK, "supervisor-scorecards.html", page{L: l, Session: &q.session, Path: q.r.URL.RequestURI(), Data: p})
}

// svCard is a scorecard as the table shows it.
func (c *Console) svCard(l lang, d svDirectory, s *whistlev1.Scorecard) svCardView {
	v := svCardView{ID: s.GetId(), Name: cmp.Or(s.GetName(), d.name(s.GetId())), Small: s.GetSmallSample(),
		Dispatched: s.GetDispatched(), Returns: s.GetReturns(), Urges: s.GetUrges(), Whistles: s.GetWhistles(), Breaches: s.GetBreaches(),
		MedianAck: svTook(l, s.GetMedianTimeToAcknowledge()), P90Ack: svTook(l, s.GetP90TimeToAcknowledge()),
		MedianResolve: svTook(l, s.GetMedianTimeToResolve()), P90Resolve: svTook(l, s.GetP90TimeToResolve()),
		Extensions: l.T("supervisor.card.extensions_of", s.GetExtensionsRequested(), s.GetExtensionsApproved(), s.GetExtensionsDenied())}
	if s.GetRank() > 0 {
		v.Rank = fmt.Sprint(s.GetRank())
	}
	for _, r := range []*whistlev1.ScorecardRate{s.GetResponseRate(), s.GetOnTimeReportInRate(), s.GetResolutionRate(),
		s.GetOnTimeResolutionRate(), s.GetSatisfactionRate()} {
		v.Rates = append(v.Rates, svRate(l, r))
	}
	var levels []string
	for _, b := range s.GetBreachesByLevel() {
		levels = append(levels, l.T("supervisor.card.level_count", b.GetLevel(), b.GetCount()))
	}
	v.Levels = strings.Join(levels, l.T("supervisor.list_separator"))
	return v
}

// svRate writes a rate as a percentage, with its fraction; a rate of nothing (no denominator) is a
// dash, not 0 %.
func svRate(l lang, r *whistlev1.ScorecardRate) svRateView {
	if r.GetDenominator() == 0 {
		return svRateView{Percent: l.T("supervisor.none")}
	}
	return svRateView{Percent: l.T("supervisor.percent", fmt.Sprintf("%.1f", 100*r.GetValue())),
		Fraction: fmt.Sprintf("%d/%d", r.GetNumerator(), r.GetDenominator())}
}

// svPercent is a rate in percent, to one decimal, for the chart; nil without a denominator.
func svPercent(r *whistlev1.ScorecardRate) *float64 {
	if r.GetDenominator() == 0 {
		return nil
	}
	v := math.Round(1000*r.GetValue()) / 10
	return &v
}

// svTook writes a time to report in or to resolve; a dash when no part got there.
func svTook(l lang, d *durationpb.Duration) string {
	if d == nil {
		return l.T("supervisor.none")
	}
	return svLateness(l, d.AsDuration())
}
