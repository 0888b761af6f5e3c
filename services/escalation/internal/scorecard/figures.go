package scorecard

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/assignment"
)

// MinSample is the fewest dispatched parts a scorecard needs to be ranked: below it a single
// part moves a rate by more than five points, and the scorecard is marked a small sample.
const MinSample = 20

// MaxPeriod is the longest period a scorecard covers: a year, a leap year's included.
const MaxPeriod = 366 * 24 * time.Hour

// WorkingTime measures the time between a and b in working time (working days and hours, public
// holidays and adjusted working days): the city's working calendar plugs in here.
type WorkingTime func(a, b time.Time) time.Duration

// CalendarTime is b - a: the measure of every part until a working calendar is plugged in.
func CalendarTime(a, b time.Time) time.Duration { return b.Sub(a) }

// Rate is a share, kept as its numerator and denominator.
type Rate struct{ Num, Den int }

// Value is Num/Den, or 0 when Den is 0.
func (r Rate) Value() float64 {
	if r.Den == 0 {
		return 0
	}
	return float64(r.Num) / float64(r.Den)
}

// compare orders two rates by value exactly; a rate of nothing counts as 0.
func (r Rate) compare(o Rate) int {
	a, b := r.Num*max(o.Den, 1), o.Num*max(r.Den, 1)
	if r.Den == 0 {
		a = 0
	}
	if o.Den == 0 {
		b = 0
	}
	return cmp.Compare(a, b)
}

// Spread is the median and the 90th percentile of some durations, by nearest rank: the
// ⌈n/2⌉-th and the ⌈0.9·n⌉-th shortest, each a time some part took. N is how many there were;
// with none, the others are zero.
type Spread struct {
	Median, P90 time.Duration
	N           int
}

// spread computes a Spread of ds, which it sorts.
func spread(ds []time.Duration) Spread {
	if len(ds) == 0 {
		return Spread{}
	}
	slices.Sort(ds)
	return Spread{Median: ds[rank(50, len(ds))], P90: ds[rank(90, len(ds))], N: len(ds)}
}

// rank is the index of the p-th percentile of n sorted values by nearest rank: ⌈p·n/100⌉ - 1.
func rank(p, n int) int { return (p*n+99)/100 - 1 }

// Card is one subject's scorecard.
type Card struct {
	Kind Kind
	ID   string
	// Name and, for a unit, DepartmentID come from the catalog.
	Name, DepartmentID string
	// Dispatched is the population: the parts dispatched in the period, withdrawn ones left out.
	Dispatched int
	// Of those, the parts that reported in at least once, those whose report-in deadlines were
	// never breached among them, those resolved as they stand now, those whose resolve deadlines
	// were never breached among them, and those returned.
	ReportedIn, ReportedInOnTime, Resolved, ResolvedOnTime, Returns int
	// Ratings counts the ratings attributed to the parts, Satisfied those of 4 or 5.
	Ratings, Satisfied int
	// TimeToAcknowledge and TimeToResolve run from dispatch to the first report-in and to the
	// resolution that stands, in working time for a part whose policy counts it.
	TimeToAcknowledge, TimeToResolve Spread
	// Breaches counts the parts' breached deadlines, every round and both kinds; ByLevel counts
	// them by the highest level of the escalation chain each reached (0: not escalated).
	Breaches int
	ByLevel  map[int]int
	// Extensions asked for and decided, and urges.
	ExtensionsRequested, ExtensionsApproved, ExtensionsDenied, Urges int
	// Whistles counts the issues raised in a street in the period; streets only.
	Whistles int
	// SmallSample is set below MinSample dispatched parts; Rank is the card's place among the
	// ranked ones, from 1, or 0 when it is not ranked.
	SmallSample bool
	Rank        int
}

// ResponseRate (响应率) is the share of the dispatched parts that reported in.
func (c Card) ResponseRate() Rate { return Rate{c.ReportedIn, c.Dispatched} }

// OnTimeReportInRate is the share of the dispatched parts that reported in on time.
func (c Card) OnTimeReportInRate() Rate { return Rate{c.ReportedInOnTime, c.Dispatched} }

// ResolutionRate (解决率) is the share of the dispatched parts resolved.
func (c Card) ResolutionRate() Rate { return Rate{c.Resolved, c.Dispatched} }

// OnTimeResolutionRate is the share of the dispatched parts resolved on time.
func (c Card) OnTimeResolutionRate() Rate { return Rate{c.ResolvedOnTime, c.Dispatched} }

// SatisfactionRate (满意率) is the share of the ratings that were 4 or 5.
func (c Card) SatisfactionRate() Rate { return Rate{c.Satisfied, c.Ratings} }

// Levels lists the levels breaches reached, lowest first.
func (c Card) Levels() []int { return slices.Sorted(maps.Keys(c.ByLevel)) }

// Tally computes the figures of parts, which the caller picked: one subject's, dispatched in the
// period. working measures the parts whose policy counts working time; nil means CalendarTime.
func Tally(parts []Part, working WorkingTime) Card {
	if working == nil {
		working = CalendarTime
	}
	c := Card{ByLevel: map[int]int{}}
	var toAck, toResolve []time.Duration
	for _, p := range parts {
		measure := CalendarTime
		if p.WorkingTime {
			measure = working
		}
		c.Dispatched++
		breached := map[assignment.DeadlineKind]bool{}
		for _, b := range p.Breaches {
			breached[b.Kind] = true
			c.Breaches++
			c.ByLevel[b.Level]++
		}
		if !p.AcknowledgedAt.IsZero() {
			c.ReportedIn++
			toAck = append(toAck, measure(p.DispatchedAt, p.AcknowledgedAt))
			if !breached[assignment.ReportIn] {
				c.ReportedInOnTime++
			}
		}
		if !p.ResolvedAt.IsZero() {
			c.Resolved++
			toResolve = append(toResolve, measure(p.DispatchedAt, p.ResolvedAt))
			if !breached[assignment.Resolve] {
				c.ResolvedOnTime++
			}
		}
		if !p.ReturnedAt.IsZero() {
			c.Returns++
		}
		if p.Rating > 0 {
			c.Ratings++
			if p.Rating >= 4 {
				c.Satisfied++
			}
		}
		c.ExtensionsRequested += p.ExtensionsRequested
		c.ExtensionsApproved += p.ExtensionsApproved
		c.ExtensionsDenied += p.ExtensionsDenied
		c.Urges += p.Urges
	}
	c.TimeToAcknowledge, c.TimeToResolve = spread(toAck), spread(toResolve)
	c.SmallSample = c.Dispatched < MinSample
	return c
}

// Rank orders cards for a list and numbers the ranked ones: those with at least MinSample parts
// first, best first by on-time resolution rate, then resolution rate, then response rate, cards
// equal on all three sharing a place (1, 2, 2, 4) and listed by id; then the small samples,
// unranked (Rank 0), by id.
func Rank(cards []Card) {
	slices.SortStableFunc(cards, func(a, b Card) int {
		if a.SmallSample != b.SmallSample {
			if a.SmallSample {
				return 1
			}
			return -1
		}
		if !a.SmallSample {
			if c := better(a, b); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.ID, b.ID)
	})
	for i := range cards {
		cards[i].Rank = 0
		if cards[i].SmallSample {
			continue
		}
		cards[i].Rank = i + 1
		if i > 0 && better(cards[i-1], cards[i]) == 0 {
			cards[i].Rank = cards[i-1].Rank
		}
	}
}

// better compares two cards for ranking: negative when a ranks above b, 0 when they tie.
func better(a, b Card) int {
	for _, rate := range []func(Card) Rate{Card.OnTimeResolutionRate, Card.ResolutionRate, Card.ResponseRate} {
		if c := rate(b).compare(rate(a)); c != 0 {
			return c
		}
	}
	return 0
}
