package workcal_test

import (
	"errors"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/whistle-dispatch/whistle/services/internal/workcal"
)

// The properties run over the embedded years, 2025 and 2026.
var (
	start = time.Date(2025, time.January, 1, 0, 0, 0, 0, shanghai)
	end   = time.Date(2027, time.January, 1, 0, 0, 0, 0, shanghai)
)

// instant draws a time in the embedded years: anywhere, to the nanosecond, or on or a
// nanosecond either side of the edges of the working spans and of the day, where mistakes live.
func instant() *rapid.Generator[time.Time] {
	anywhere := rapid.Custom(func(t *rapid.T) time.Time {
		return time.Unix(0, rapid.Int64Range(start.UnixNano(), end.UnixNano()-1).Draw(t, "ns")).In(shanghai)
	})
	edge := rapid.Custom(func(t *rapid.T) time.Time {
		day := start.AddDate(0, 0, rapid.IntRange(0, 729).Draw(t, "day"))
		clock := rapid.SampledFrom([]time.Duration{0, 9 * time.Hour, 12 * time.Hour, 13*time.Hour + 30*time.Minute, 17*time.Hour + 30*time.Minute}).Draw(t, "clock")
		nudge := rapid.SampledFrom([]time.Duration{-time.Nanosecond, 0, time.Nanosecond}).Draw(t, "nudge")
		at := day.Add(clock + nudge)
		if at.Before(start) {
			return start
		}
		return at
	})
	return rapid.OneOf(anywhere, edge)
}

// duration draws a working time: any, to the nanosecond, up to about ten weeks of working days;
// whole half hours, as limits are written; or next to nothing.
func duration() *rapid.Generator[time.Duration] {
	return rapid.OneOf(
		rapid.Map(rapid.Int64Range(0, int64(50*workday)), func(n int64) time.Duration { return time.Duration(n) }),
		rapid.Map(rapid.IntRange(0, 100), func(n int) time.Duration { return time.Duration(n) * 30 * time.Minute }),
		rapid.Map(rapid.IntRange(0, 3), func(n int) time.Duration { return time.Duration(n) }),
	)
}

func TestAddingThenMeasuringGivesBackTheDuration(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	rapid.Check(t, func(t *rapid.T) {
		from, d := instant().Draw(t, "from"), duration().Draw(t, "d")
		got, err := c.Add(from, d)
		if err != nil {
			// Only when the data runs out: less than d left, or no working time at all for d == 0.
			rest, _ := c.Between(from, end)
			if !errors.Is(err, workcal.ErrNoYear) || rest > d || rest == d && d > 0 {
				t.Fatalf("Add(%s, %s): %v, with %s of working time left in the data", from, d, err, rest)
			}
			return
		}
		if between, err := c.Between(from, got); err != nil || between != d {
			t.Fatalf("Add(%s, %s) = %s, but Between gives %s (%v)", from, d, got, between, err)
		}
	})
}

func TestAResultNeverFallsOutsideWorkingTime(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	rapid.Check(t, func(t *rapid.T) {
		from, d := instant().Draw(t, "from"), duration().Draw(t, "d")
		got, err := c.Add(from, d)
		if err != nil {
			return
		}
		working, _ := c.IsWorking(got)
		justBefore, _ := c.IsWorking(got.Add(-time.Nanosecond))
		switch {
		case d == 0 && !working:
			t.Fatalf("Add(%s, 0) = %s, which is not working time", from, got)
		case d > 0 && !working && !justBefore:
			t.Fatalf("Add(%s, %s) = %s, outside working time and not the end of a span", from, d, got)
		case d > 0 && !justBefore:
			t.Fatalf("Add(%s, %s) = %s, the start of a span: the time ran out at the end of the one before", from, d, got)
		}
	})
}

func TestAddIsMonotonicInTheDuration(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	rapid.Check(t, func(t *rapid.T) {
		from := instant().Draw(t, "from")
		d1, d2 := duration().Draw(t, "d1"), duration().Draw(t, "d2")
		if d1 > d2 {
			d1, d2 = d2, d1
		}
		r1, err1 := c.Add(from, d1)
		r2, err2 := c.Add(from, d2)
		if err2 != nil {
			return
		}
		if err1 != nil {
			t.Fatalf("Add(%s, %s) failed (%v) where the longer %s did not", from, d1, err1, d2)
		}
		if d1 < d2 && !r1.Before(r2) || r1.Before(from) {
			t.Fatalf("from %s: Add %s = %s, Add %s = %s", from, d1, r1, d2, r2)
		}
	})
}

func TestBetweenIsAdditive(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	rapid.Check(t, func(t *rapid.T) {
		a, b, e := instant().Draw(t, "a"), instant().Draw(t, "b"), instant().Draw(t, "c")
		ab, err1 := c.Between(a, b)
		be, err2 := c.Between(b, e)
		ae, err3 := c.Between(a, e)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		if ab+be != ae {
			t.Fatalf("Between(a, b) %s + Between(b, c) %s != Between(a, c) %s", ab, be, ae)
		}
	})
}

// reference is the working time in [a, b), a ≤ b, counted the slow way: day by day, from the
// rules as the notices state them, without the calendar's index.
func reference(years map[int]*workcal.Year, a, b time.Time) time.Duration {
	var total time.Duration
	for day := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, shanghai); day.Before(b); day = day.AddDate(0, 0, 1) {
		y := years[day.Year()]
		working := day.Weekday() != time.Saturday && day.Weekday() != time.Sunday
		for _, h := range y.Holidays {
			if !day.Before(h.From) && !day.After(h.To) {
				working = false
			}
		}
		for _, adj := range y.Adjusted {
			if adj.Date.Equal(day) {
				working = true
			}
		}
		if !working {
			continue
		}
		for _, s := range y.Hours {
			from, to := day.Add(s.From), day.Add(s.To) // no clock change in Shanghai
			if from.Before(a) {
				from = a
			}
			if to.After(b) {
				to = b
			}
			if to.After(from) {
				total += to.Sub(from)
			}
		}
	}
	return total
}

func TestBetweenAgreesWithCountingDayByDay(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	years := map[int]*workcal.Year{}
	for _, y := range c.Years() {
		years[y], _ = c.Year(y)
	}
	rapid.Check(t, func(t *rapid.T) {
		a, b := instant().Draw(t, "a"), instant().Draw(t, "b")
		if b.Before(a) {
			a, b = b, a
		}
		got, err := c.Between(a, b)
		if want := reference(years, a, b); err != nil || got != want {
			t.Fatalf("Between(%s, %s) = %s (%v); counted day by day %s", a, b, got, err, want)
		}
	})
}

// holidays are every holiday of the embedded years.
func holidays(c *workcal.Calendar) []workcal.Holiday {
	var out []workcal.Holiday
	for _, y := range c.Years() {
		yr, _ := c.Year(y)
		out = append(out, yr.Holidays...)
	}
	return out
}

func TestAddingAcrossAHolidaySkipsIt(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	rapid.Check(t, func(t *rapid.T) {
		h := rapid.SampledFrom(holidays(c)).Draw(t, "holiday")
		after := h.To.AddDate(0, 0, 1)
		// Inside the holiday nothing is working time.
		inside := h.From.Add(time.Duration(rapid.Int64Range(0, int64(after.Sub(h.From))-1).Draw(t, "inside")))
		if working, _ := c.IsWorking(inside); working {
			t.Fatalf("%s, in %s, is working time", inside, h.Name)
		}
		// From the week before it, a duration that outlasts the working time left before it ends
		// after it.
		from := h.From.Add(-time.Duration(rapid.Int64Range(1, int64(7*24*time.Hour)).Draw(t, "before")))
		left, err := c.Between(from, h.From)
		if err != nil { // 元旦 2025 has no week before it in the data
			return
		}
		d := left + time.Duration(rapid.Int64Range(1, int64(3*workday)).Draw(t, "beyond"))
		got, err := c.Add(from, d)
		if err != nil || !got.After(after) {
			t.Fatalf("Add(%s, %s) = %s (%v), which does not skip %s (%s to %s)", from, d, got, err, h.Name, h.From, h.To)
		}
		if during, _ := c.Between(h.From, after); during != 0 {
			t.Fatalf("%s counts %s of working time", h.Name, during)
		}
	})
}

func TestAnAdjustedWeekendDayCountsAsAWorkingDay(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	var adjusted []workcal.AdjustedDay
	for _, y := range c.Years() {
		yr, _ := c.Year(y)
		adjusted = append(adjusted, yr.Adjusted...)
	}
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.SampledFrom(adjusted).Draw(t, "adjusted")
		next := a.Date.AddDate(0, 0, 1)
		if got, _ := c.Between(a.Date, next); got != workday {
			t.Fatalf("the adjusted %s %s counts %s of working time, not a working day's %s", a.Date.Weekday(), a.Date, got, workday)
		}
		// From its midnight, any working time up to a day's ends on it.
		d := time.Duration(rapid.Int64Range(1, int64(workday)).Draw(t, "d"))
		got, err := c.Add(a.Date, d)
		if err != nil || !got.After(a.Date) || got.After(next) {
			t.Fatalf("Add(%s, %s) = %s (%v), not on the adjusted day", a.Date, d, got, err)
		}
		if working, _ := c.IsWorking(a.Date.Add(10 * time.Hour)); !working {
			t.Fatalf("10:00 on the adjusted %s %s is not working time", a.Date.Weekday(), a.Date)
		}
	})
}

func BenchmarkAdd(b *testing.B) {
	c := embedded(b)
	from := local(b, "2025-09-26 14:00")
	for b.Loop() {
		if _, err := c.Add(from, 3*workday); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBetween(b *testing.B) {
	c := embedded(b)
	from, to := local(b, "2025-01-27 10:00"), local(b, "2026-02-24 15:00")
	for b.Loop() {
		if _, err := c.Between(from, to); err != nil {
			b.Fatal(err)
		}
	}
}
