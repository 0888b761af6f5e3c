// Package workcal is the working calendar: which days are working days and which hours of them
// are working time, so that a time limit can be counted in working time, as government deadlines
// in China are ("办结时限 N 个工作日"). A year is working days Monday to Friday and weekends off,
// except the public holidays and the adjusted working days (调休上班, weekend days worked to make
// up for a holiday) that the State Council announces each November for the year after.
//
// Each year is one YAML file; the package embeds the years it ships (years/*.yaml), and a city may
// give its own (Load). A year file reads:
//
//	year: 2025
//	source:                      # the notice the days follow; a title is required
//	  title: 国务院办公厅关于2025年部分节假日安排的通知
//	  number: 国办发明电〔2024〕12号  # optional: left out when it cannot be confirmed
//	  issued: 2024-11-12          # optional
//	verified: true               # required: the days were checked against the notice's text
//	note: free text              # optional: what was checked, and what was not
//	timezone: Asia/Shanghai      # required: every year of a calendar has the same zone
//	hours:                       # the working spans of every working day, local time
//	  - {from: "09:00", to: "12:00"}
//	  - {from: "13:30", to: "17:30"}
//	holidays:                    # days off, first to last day; to may be left out for one day
//	  - {name: 春节, from: 2025-01-28, to: 2025-02-04}
//	adjusted_workdays:           # 调休上班: weekend days that are working days
//	  - {date: 2025-01-26, for: 春节}
//
// Every date lies in the file's year. A notice that reaches into the year before (the 2019
// notice's 元旦 began on 2018-12-30) has those days written in the earlier year's file. The
// hours are the city's, not the notice's: the notice sets days only.
//
// Working time is counted exactly, to the nanosecond, on an index of the days built once, so the
// arithmetic costs a lookup and a binary search however long the span. A time in a year the
// calendar has no file for is an error wrapping ErrNoYear; WithPlainWeeks is the fallback for a
// year whose notice is not out yet.
package workcal

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrNoYear is wrapped by the error of a calculation that reaches a year the calendar has no
// data for. Its message names the years the calendar knows.
var ErrNoYear = errors.New("no working calendar for the year")

// Year is one year of the calendar as its file gives it. A Year is shared by the calendar and
// must not be modified.
type Year struct {
	Year     int
	Source   Source
	Verified bool // the days were checked against the notice's text
	// Assumed marks a year the file did not give: WithPlainWeeks took it as plain weeks.
	Assumed  bool
	Note     string
	File     string // where it was read from, "embedded:years/2025.yaml" for an embedded one
	Zone     *time.Location
	Hours    []Span
	Holidays []Holiday
	Adjusted []AdjustedDay // 调休上班, in date order
}

// Source is the official notice a year follows.
type Source struct {
	Title  string
	Number string    // the document number, such as 国办发明电〔2024〕12号; empty when not confirmed
	Issued time.Time // the notice's date, local midnight; zero when not given
}

// Span is a stretch of working time in every working day, as times of day since midnight:
// From is working time, To is not.
type Span struct {
	From, To time.Duration
}

// String is "09:00–12:00".
func (s Span) String() string { return clockText(s.From) + "–" + clockText(s.To) }

// Holiday is a named run of days off, From to To, both local midnights and both included.
type Holiday struct {
	Name     string
	From, To time.Time
}

// Days is how many days the holiday has.
func (h Holiday) Days() int { return daysBetween(h.From, h.To) + 1 }

// AdjustedDay is a weekend day that is a working day (调休上班), made up for the holiday named
// by For.
type AdjustedDay struct {
	Date time.Time // local midnight
	For  string
}

// Calendar answers working-time questions over the years it knows. It is immutable and safe for
// concurrent use.
type Calendar struct {
	zone  *time.Location
	years []*Year     // in year order
	first map[int]int // each year's first day in days
	days  []day       // every day of every year, in order
}

// day is one day of the index.
type day struct {
	before time.Duration // the working time of the days before it in the index
	work   time.Duration // its own working time
	spans  []span        // its working time as instants; none on a day off
}

// span is a stretch of working time in unix nanoseconds, from included, to excluded. Instants
// rather than times of day keep the arithmetic exact in a zone whose days are not all 24 hours.
type span struct{ from, to int64 }

// newCalendar indexes years, which are distinct, checked, and of one zone.
func newCalendar(years []*Year) *Calendar {
	years = slices.Clone(years)
	slices.SortFunc(years, func(a, b *Year) int { return a.Year - b.Year })
	c := &Calendar{years: years, first: map[int]int{}}
	if len(years) > 0 {
		c.zone = years[0].Zone
	}
	var before time.Duration
	for _, y := range years {
		c.first[y.Year] = len(c.days)
		for _, d := range y.days() {
			c.days = append(c.days, d)
			c.days[len(c.days)-1].before = before
			before += d.work
		}
	}
	return c
}

// days indexes the year's days, with before left at zero.
func (y *Year) days() []day {
	off, adjusted := map[int]bool{}, map[int]bool{} // by day of the year
	for _, h := range y.Holidays {
		for d := h.From; !d.After(h.To); d = d.AddDate(0, 0, 1) {
			off[d.YearDay()] = true
		}
	}
	for _, a := range y.Adjusted {
		adjusted[a.Date.YearDay()] = true
	}
	var out []day
	for d := time.Date(y.Year, time.January, 1, 0, 0, 0, 0, y.Zone); d.Year() == y.Year; d = d.AddDate(0, 0, 1) {
		weekend := d.Weekday() == time.Saturday || d.Weekday() == time.Sunday
		var dd day
		if adjusted[d.YearDay()] || !weekend && !off[d.YearDay()] {
			for _, s := range y.Hours {
				sp := span{at(d, s.From), at(d, s.To)}
				if sp.to > sp.from { // a clock change could swallow a span whole
					dd.spans = append(dd.spans, sp)
					dd.work += time.Duration(sp.to - sp.from)
				}
			}
		}
		out = append(out, dd)
	}
	return out
}

// at is the instant of a time of day on the day of midnight, read as a clock shows it.
func at(midnight time.Time, clock time.Duration) int64 {
	y, m, d := midnight.Date()
	h, rest := clock/time.Hour, clock%time.Hour
	return time.Date(y, m, d, int(h), int(rest/time.Minute), int(rest%time.Minute/time.Second), int(rest%time.Second), midnight.Location()).UnixNano()
}

// Zone is the calendar's time zone, in which its days begin and end.
func (c *Calendar) Zone() *time.Location { return c.zone }

// Years are the years the calendar knows, in order.
func (c *Calendar) Years() []int {
	out := make([]int, len(c.years))
	for i, y := range c.years {
		out[i] = y.Year
	}
	return out
}

// Year is the data of year y, or an error wrapping ErrNoYear that names the years it knows.
func (c *Calendar) Year(y int) (*Year, error) {
	for _, yr := range c.years {
		if yr.Year == y {
			return yr, nil
		}
	}
	return nil, c.noYear(y)
}

// noYear is the error for year y, naming the years the calendar knows.
func (c *Calendar) noYear(y int) error {
	known := make([]string, len(c.years))
	for i, yr := range c.years {
		known[i] = strconv.Itoa(yr.Year)
	}
	return fmt.Errorf("%w %d: the calendar knows %s", ErrNoYear, y, orNone(strings.Join(known, ", ")))
}

func orNone(s string) string {
	if s == "" {
		return "no year"
	}
	return s
}

// locate is the index of the day t falls on, in the calendar's zone.
func (c *Calendar) locate(t time.Time) (int, error) {
	lt := t.In(c.zone)
	first, ok := c.first[lt.Year()]
	if !ok {
		return 0, c.noYear(lt.Year())
	}
	return first + lt.YearDay() - 1, nil
}

// position is the working time from the start of the index to t, and t's day.
func (c *Calendar) position(t time.Time) (time.Duration, int, error) {
	i, err := c.locate(t)
	if err != nil {
		return 0, 0, err
	}
	d, n := &c.days[i], t.UnixNano()
	p := d.before
	for _, s := range d.spans {
		if n <= s.from {
			break
		}
		p += time.Duration(min(n, s.to) - s.from)
	}
	return p, i, nil
}

// covers checks that the calendar knows every year from the year of a to the year of b: the
// index runs on over a missing year, so a span across one would miss it silently.
func (c *Calendar) covers(a, b time.Time) error {
	for y := a.In(c.zone).Year(); y <= b.In(c.zone).Year(); y++ {
		if _, ok := c.first[y]; !ok {
			return c.noYear(y)
		}
	}
	return nil
}

// IsWorking says whether t is working time: a working day, within one of its spans (a span's
// start is working time, its end is not).
func (c *Calendar) IsWorking(t time.Time) (bool, error) {
	i, err := c.locate(t)
	if err != nil {
		return false, err
	}
	n := t.UnixNano()
	for _, s := range c.days[i].spans {
		if s.from <= n && n < s.to {
			return true, nil
		}
	}
	return false, nil
}

// IsWorkingDay says whether the day t falls on, in the calendar's zone, is a working day.
func (c *Calendar) IsWorkingDay(t time.Time) (bool, error) {
	i, err := c.locate(t)
	if err != nil {
		return false, err
	}
	return len(c.days[i].spans) > 0, nil
}

// Between is the working time in [a, b); when b is before a it is minus the working time in
// [b, a), so that Between(a, b) + Between(b, c) == Between(a, c) whatever the order.
func (c *Calendar) Between(a, b time.Time) (time.Duration, error) {
	sign := time.Duration(1)
	if b.Before(a) {
		a, b, sign = b, a, -1
	}
	if !b.After(a) {
		return 0, nil
	}
	// [a, b) needs nothing of b's year when b is its first instant, so b is measured by the
	// instant before it: an interval may end at the start of a year the calendar lacks.
	last := b.Add(-time.Nanosecond)
	if err := c.covers(a, last); err != nil {
		return 0, err
	}
	pa, _, err := c.position(a)
	if err != nil {
		return 0, err
	}
	pb, _, err := c.position(last)
	if err != nil {
		return 0, err
	}
	if working, _ := c.IsWorking(last); working {
		pb += time.Nanosecond
	}
	return sign * (pb - pa), nil
}

// Add is the instant at which d of working time has passed since from: the earliest t with
// Between(from, t) == d, in the calendar's zone. It lies in working time or at the very end of a
// span (12:00 for a morning to 12:00): a deadline is the moment the time runs out, not the start
// of the next span. Add(from, 0) is from when from is working time and otherwise the start of the
// next working span, so that a deadline never falls outside working time. A negative d is refused.
func (c *Calendar) Add(from time.Time, d time.Duration) (time.Time, error) {
	if d < 0 {
		return time.Time{}, fmt.Errorf("workcal: cannot add a negative working time %s", d)
	}
	p, i, err := c.position(from)
	if err != nil {
		return time.Time{}, err
	}
	last := &c.days[len(c.days)-1]
	if d > last.before+last.work-p { // beyond the index; checked first, as p+d may overflow
		return time.Time{}, c.missingAfter(from)
	}
	target := p + d
	// The day the target falls in: the first whose end reaches it, or passes it for d == 0,
	// which must land in working time rather than at the end of a span.
	j := i + sort.Search(len(c.days)-i, func(k int) bool {
		end := c.days[i+k].before + c.days[i+k].work
		return end > target || d > 0 && end == target
	})
	if j == len(c.days) {
		return time.Time{}, c.missingAfter(from)
	}
	rem := target - c.days[j].before
	for _, s := range c.days[j].spans {
		n := time.Duration(s.to - s.from)
		if rem < n || d > 0 && rem == n {
			t := time.Unix(0, s.from+int64(rem)).In(c.zone)
			if err := c.covers(from, t); err != nil {
				return time.Time{}, err
			}
			return t, nil
		}
		rem -= n
	}
	return time.Time{}, errors.New("workcal: the index's working time disagrees with its spans") // cannot happen: the search chose the day by their sum
}

// missingAfter is the error for the first year after from's that the calendar lacks.
func (c *Calendar) missingAfter(from time.Time) error {
	y := from.In(c.zone).Year() + 1
	for _, ok := c.first[y]; ok; _, ok = c.first[y] {
		y++
	}
	return c.noYear(y)
}

// WithPlainWeeks is the fallback for years the calendar lacks, such as the next year before its
// notice is out: it returns a calendar that also knows each of the given years it lacked as
// plain weeks (Monday to Friday working, with the hours of the nearest year it knows, no holidays
// and no adjusted days), marked Assumed. Whether a span touched such a year is Assumed; a
// deadline counted over one is provisional and should be counted again once the year's file comes.
func (c *Calendar) WithPlainWeeks(years ...int) *Calendar {
	all := slices.Clone(c.years)
	for _, y := range years {
		if _, ok := c.first[y]; ok || slices.ContainsFunc(all, func(x *Year) bool { return x.Year == y }) {
			continue
		}
		var hours []Span
		if near := c.nearest(y); near != nil {
			hours = near.Hours
		}
		all = append(all, &Year{Year: y, Assumed: true, Zone: c.zone, Hours: hours,
			Source: Source{Title: "plain weeks, assumed: no notice for the year"}})
	}
	return newCalendar(all)
}

// nearest is the known year closest to y, the later of two as close.
func (c *Calendar) nearest(y int) *Year {
	var best *Year
	for _, yr := range c.years {
		if best == nil || abs(yr.Year-y) <= abs(best.Year-y) {
			best = yr
		}
	}
	return best
}

func abs(n int) int { return max(n, -n) }

// Assumed says whether any day from a to b (either order) lies in a year WithPlainWeeks assumed.
func (c *Calendar) Assumed(a, b time.Time) bool {
	if b.Before(a) {
		a, b = b, a
	}
	for y := a.In(c.zone).Year(); y <= b.In(c.zone).Year(); y++ {
		if yr, err := c.Year(y); err == nil && yr.Assumed {
			return true
		}
	}
	return false
}

// clockText is a time of day as "09:00", or "09:00:30" when it has seconds.
func clockText(d time.Duration) string {
	h, m, s := d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second
	if s != 0 {
		return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%02d:%02d", h, m)
}

// daysBetween is the number of calendar days from a to b, both midnights of one zone.
func daysBetween(a, b time.Time) int {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return int(time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC).Sub(time.Date(ay, am, ad, 0, 0, 0, 0, time.UTC)) / (24 * time.Hour))
}
