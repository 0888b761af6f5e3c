package workcal_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/workcal"
)

var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	z, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return z
}

// local reads "2025-09-26 09:00", or with seconds and a fraction, in Shanghai time.
func local(t testing.TB, v string) time.Time {
	t.Helper()
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05.999999999"} {
		if at, err := time.ParseInLocation(layout, v, shanghai); err == nil {
			return at
		}
	}
	t.Fatalf("bad time %q", v)
	return time.Time{}
}

// embedded is the calendar the package ships.
func embedded(t testing.TB) *workcal.Calendar {
	t.Helper()
	c, err := workcal.Embedded()
	if err != nil {
		t.Fatalf("the embedded calendar does not load: %v", err)
	}
	return c
}

// workday is one working day of the embedded years: 09:00–12:00 and 13:30–17:30.
const workday = 7 * time.Hour

// The figures below were counted by hand on the notices' tables and a wall calendar.
func TestAddCountsWorkingTimeOverWeekendsHolidaysAndAdjustedDays(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	for _, tc := range []struct {
		name string
		from string
		d    time.Duration
		want string
	}{
		// Fri 26 Sep, then Sun 28 Sep (adjusted), Mon 29 Sep.
		{"three working days from the opening of the Friday before National Day 2025", "2025-09-26 09:00", 3 * workday, "2025-09-29 17:30"},
		// 3.5h left on Fri 26, 7h on Sun 28, 7h on Mon 29, 3.5h of Tue 30: 09:00–12:00 and 13:30–14:00.
		{"three working days from the Friday afternoon before National Day 2025", "2025-09-26 14:00", 3 * workday, "2025-09-30 14:00"},
		// 3.5h left on Tue 30 Sep; 1 to 8 Oct are off; 3.5h of Thu 9 Oct.
		{"a working day from the eve of National Day 2025 ends after the holiday", "2025-09-30 14:00", workday, "2025-10-09 14:00"},
		{"two working days from the Monday before Spring Festival 2025 skip 28 Jan to 4 Feb", "2025-01-27 09:00", 2 * workday, "2025-02-05 17:30"},
		{"the Sunday before Spring Festival 2025 is worked", "2025-01-24 17:30", workday, "2025-01-26 17:30"},
		{"the Saturday after Spring Festival 2025 is worked", "2025-02-07 17:30", time.Hour, "2025-02-08 10:00"},
		{"a result at the end of a span is that end, not the next span's start", "2025-03-03 11:00", time.Hour, "2025-03-03 12:00"},
		{"the lunch break is not working time", "2025-03-03 11:00", 90 * time.Minute, "2025-03-03 14:00"},
		{"one nanosecond before noon ends at noon", "2025-03-03 11:59:59.999999999", time.Nanosecond, "2025-03-03 12:00"},
		{"two nanoseconds before noon go on after lunch", "2025-03-03 11:59:59.999999999", 2 * time.Nanosecond, "2025-03-03 13:30:00.000000001"},
		{"zero from working time is that time", "2025-03-03 10:00", 0, "2025-03-03 10:00"},
		{"zero at the end of the morning is the start of the afternoon", "2025-03-03 12:00", 0, "2025-03-03 13:30"},
		{"zero on a Friday evening is Monday's opening", "2025-03-07 18:00", 0, "2025-03-10 09:00"},
		{"zero at the close of the eve of National Day 2025 is the opening after it", "2025-09-30 17:30", 0, "2025-10-09 09:00"},
		// New Year 2026 is 1 to 3 Jan and Sunday 4 Jan is worked.
		{"a working day from New Year's Eve 2025 reaches into 2026", "2025-12-31 14:00", workday, "2026-01-04 14:00"},
		// Sat 14 Feb is worked, 15 to 23 Feb are off.
		{"two working days from the Friday before Spring Festival 2026", "2026-02-13 17:30", 2 * workday, "2026-02-24 17:30"},
		{"the Saturday after Labour Day 2026 is worked", "2026-05-08 17:30", workday, "2026-05-09 17:30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Add(local(t, tc.from), tc.d)
			if err != nil {
				t.Fatalf("Add(%s, %s): %v", tc.from, tc.d, err)
			}
			if want := local(t, tc.want); !got.Equal(want) {
				t.Errorf("Add(%s, %s) = %s, want %s", tc.from, tc.d, got, want)
			}
			if got.Location() != c.Zone() {
				t.Errorf("Add returned a time in %s, not the calendar's zone", got.Location())
			}
		})
	}
}

func TestBetweenCountsOnlyWorkingTime(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	for _, tc := range []struct {
		from, to string
		want     time.Duration
	}{
		// 26, 28, 29, 30 Sep and 9, 10, 11 Oct.
		{"2025-09-26 00:00", "2025-10-13 00:00", 7 * workday},
		{"2025-10-01 00:00", "2025-10-09 00:00", 0},
		{"2025-03-03 11:00", "2025-03-03 14:00", 90 * time.Minute},
		{"2025-03-03 14:00", "2025-03-03 11:00", -90 * time.Minute},
		{"2025-01-01 00:00", "2026-01-01 00:00", 248 * workday},
		{"2026-01-01 00:00", "2027-01-01 00:00", 248 * workday},
	} {
		got, err := c.Between(local(t, tc.from), local(t, tc.to))
		if err != nil || got != tc.want {
			t.Errorf("Between(%s, %s) = %s, %v; want %s", tc.from, tc.to, got, err, tc.want)
		}
	}
}

func TestTheWorkingDaysOfEachMonthAreTheNoticesCount(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	for _, tc := range []struct {
		year  int
		month time.Month
		want  int
	}{
		{2025, time.January, 19},   // 23 weekdays, less 1 and 28–31 Jan, and Sun 26 Jan worked
		{2025, time.February, 19},  // 20 weekdays, less 3 and 4 Feb, and Sat 8 Feb worked
		{2025, time.September, 23}, // 22 weekdays and Sun 28 Sep worked
		{2025, time.October, 18},   // 23 weekdays, less 1–3 and 6–8 Oct, and Sat 11 Oct worked
		{2026, time.February, 16},  // 20 weekdays, less 16–20 and 23 Feb, and Sat 14 and Sat 28 Feb worked
	} {
		n := 0
		for d := time.Date(tc.year, tc.month, 1, 0, 0, 0, 0, shanghai); d.Month() == tc.month; d = d.AddDate(0, 0, 1) {
			ok, err := c.IsWorkingDay(d)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("%d-%02d has %d working days, want %d", tc.year, tc.month, n, tc.want)
		}
	}
}

func TestIsWorkingHonoursTheSpansEdges(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	for v, want := range map[string]bool{
		"2025-03-03 08:59:59.999999999": false,
		"2025-03-03 09:00":              true,
		"2025-03-03 11:59:59.999999999": true,
		"2025-03-03 12:00":              false,
		"2025-03-03 13:30":              true,
		"2025-03-03 17:30":              false,
		"2025-03-08 10:00":              false, // a Saturday
		"2025-02-08 10:00":              true,  // an adjusted Saturday
		"2025-01-29 10:00":              false, // Spring Festival, a Wednesday
	} {
		if got, err := c.IsWorking(local(t, v)); err != nil || got != want {
			t.Errorf("IsWorking(%s) = %v, %v; want %v", v, got, err, want)
		}
	}
}

func TestAYearTheCalendarLacksIsErrNoYearNamingTheYearsItKnows(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	_, err := c.Add(local(t, "2026-12-31 14:00"), workday)
	if !errors.Is(err, workcal.ErrNoYear) || !strings.Contains(err.Error(), "2027") || !strings.Contains(err.Error(), "2025, 2026") {
		t.Errorf("adding into 2027: %v; want ErrNoYear naming 2027 and the years known", err)
	}
	if _, err := c.Between(local(t, "2024-12-31 09:00"), local(t, "2025-01-02 09:00")); !errors.Is(err, workcal.ErrNoYear) {
		t.Errorf("Between from 2024: %v; want ErrNoYear", err)
	}
	if _, err := c.Year(1999); !errors.Is(err, workcal.ErrNoYear) || !strings.Contains(err.Error(), "1999: the calendar knows 2025, 2026") {
		t.Errorf("Year(1999): %v; want ErrNoYear naming the years known", err)
	}
	if _, err := c.IsWorking(local(t, "1999-10-08 10:00")); !errors.Is(err, workcal.ErrNoYear) {
		t.Errorf("IsWorking in 1999: %v; want ErrNoYear", err)
	}
	if _, err := c.Add(local(t, "2026-12-31 14:00"), 1<<62); !errors.Is(err, workcal.ErrNoYear) {
		t.Errorf("adding a duration beyond every year: %v; want ErrNoYear", err)
	}
	if _, err := c.Add(local(t, "2025-03-03 10:00"), -time.Hour); err == nil {
		t.Error("a negative working time was added")
	}
}

func TestPlainWeeksStandInForAYearWithoutItsNoticeAndSaySo(t *testing.T) {
	t.Parallel()
	c := embedded(t).WithPlainWeeks(2027)
	from := local(t, "2026-12-31 14:00")
	got, err := c.Add(from, workday)
	// Fri 1 Jan 2027 is taken as a plain working day: its notice is not out.
	if want := local(t, "2027-01-01 14:00"); err != nil || !got.Equal(want) {
		t.Fatalf("Add into an assumed 2027 = %s, %v; want %s", got, err, want)
	}
	if !c.Assumed(from, got) {
		t.Error("a span reaching into an assumed year is not said to be assumed")
	}
	if c.Assumed(local(t, "2025-01-01 00:00"), local(t, "2026-12-31 23:59")) {
		t.Error("a span within the years of the files is said to be assumed")
	}
	if y, err := c.Year(2027); err != nil || !y.Assumed || y.Verified || len(y.Holidays) != 0 {
		t.Errorf("the assumed year is %+v", y)
	}
}
