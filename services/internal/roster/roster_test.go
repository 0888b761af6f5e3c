package roster

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

// local is a time of the city.
func local(v string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", v, shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

const twoShifts = `
people:
  - {id: head, name: Head}
  - {id: a, name: A}
  - {id: b, name: B}
  - {id: c, name: C}
  - {id: cover, name: Cover}
rosters:
  - unit: u
    head: head
    shifts:
      - {name: day, days: [mon, tue, wed, thu, fri], start: "08:30", end: "17:30", people: [a, b], turn: week, since: 2026-11-30}
      - {name: night, days: [mon, tue, wed, thu, fri], start: "17:30", end: "08:30", people: [b, c], turn: day, since: 2026-11-30}
    overrides:
      - {people: [cover], from: 2026-12-03T12:00, to: 2026-12-03T20:00, reason: a is ill}
`

func parse(t *testing.T, text string) *Rosters {
	t.Helper()
	r, err := Parse("rosters.yaml", []byte(text), shanghai, func(id string) bool { return id == "u" })
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTheRotationHandsOverAtTheShiftsEdgesAndAnOverrideReplacesIt(t *testing.T) {
	r := parse(t, twoShifts)
	cases := []struct {
		at, shift string
		people    []string
	}{
		{"2026-11-30 09:00", "day", []string{"a"}},   // week one: a by day
		{"2026-11-30 18:00", "night", []string{"b"}}, // Monday night: b
		{"2026-12-01 03:00", "night", []string{"b"}}, // still Monday's night shift after midnight
		{"2026-12-01 18:00", "night", []string{"c"}}, // Tuesday night: c
		{"2026-12-03 13:00", OverrideShift, []string{"cover"}},
		{"2026-12-03 20:30", "night", []string{"c"}}, // Thursday night, after the override
		{"2026-12-07 09:00", "day", []string{"b"}},   // week two: b by day
		{"2026-12-05 12:00", "", nil},                // Saturday: nobody
	}
	for _, c := range cases {
		d := r.OnDuty("u", local(c.at))
		if d.Shift != c.shift || !slices.Equal(d.People, c.people) {
			t.Errorf("at %s: %q %v on duty, want %q %v", c.at, d.Shift, d.People, c.shift, c.people)
		}
	}
	d := r.OnDuty("u", local("2026-11-30 10:00"))
	if !d.From.Equal(local("2026-11-30 08:30")) || !d.To.Equal(local("2026-11-30 17:30")) {
		t.Errorf("Monday's day shift runs %s to %s, want the hand-overs at 08:30 and 17:30", d.From, d.To)
	}
	gaps := r.Gaps("u", local("2026-11-30 00:00"), local("2026-12-07 00:00"))
	// Sunday has no night shift, so nobody is on duty until Monday's day shift; Friday's night
	// shift runs into Saturday morning.
	if len(gaps) != 2 || !gaps[0].To.Equal(local("2026-11-30 08:30")) || !gaps[1].From.Equal(local("2026-12-05 08:30")) || !gaps[1].To.Equal(local("2026-12-07 00:00")) {
		t.Errorf("gaps %+v, want Monday until 08:30 and the weekend from Saturday 08:30", gaps)
	}
	if got := r.Flagged([]string{"u", "unrostered"}, local("2026-11-30 00:00"), local("2026-12-07 00:00")); !slices.Equal(got, []string{"u", "unrostered"}) {
		t.Errorf("flagged %v", got)
	}
	for _, p := range []string{"head", "a", "c", "cover"} {
		if !r.Member("u", p) {
			t.Errorf("%s is not a member of u", p)
		}
	}
	if r.Member("u", "stranger") || r.Member("other", "a") {
		t.Error("a stranger, or another unit, counts as a member")
	}
}

func TestSpansCoverThePeriodWithoutGapOrOverlap(t *testing.T) {
	r := parse(t, twoShifts)
	from, to := local("2026-11-29 07:13"), local("2026-12-09 22:41")
	spans := r.Spans("u", from, to)
	if !spans[0].From.Equal(from) || !spans[len(spans)-1].To.Equal(to) {
		t.Fatalf("spans run %s to %s", spans[0].From, spans[len(spans)-1].To)
	}
	for i, s := range spans {
		if i > 0 && !s.From.Equal(spans[i-1].To) {
			t.Fatalf("span %d starts at %s, the one before ends at %s", i, s.From, spans[i-1].To)
		}
		if i > 0 && s.Shift == spans[i-1].Shift && slices.Equal(s.People, spans[i-1].People) {
			t.Fatalf("spans %d and %d have the same duty and were not merged", i-1, i)
		}
		for at := s.From; at.Before(s.To); at = at.Add(17 * time.Minute) {
			if d := r.OnDuty("u", at); d.Shift != s.Shift || !slices.Equal(d.People, s.People) {
				t.Fatalf("at %s OnDuty says %q %v, the span %q %v", at, d.Shift, d.People, s.Shift, s.People)
			}
			if people := r.PeopleAt("u", at); !slices.Equal(people, s.People) {
				t.Fatalf("at %s PeopleAt says %v, the span %v", at, people, s.People)
			}
		}
	}
}

func TestABrokenRosterIsRefusedWithEveryFaultAndItsLine(t *testing.T) {
	_, err := Parse("rosters.yaml", []byte(`
people:
  - {id: a}
  - {id: a}
rosters:
  - unit: nowhere
    head: ghost
    shifts:
      - {name: day, days: [someday], start: "8h", end: "17:30", people: [a, b], turn: month}
    overrides:
      - {people: [a], from: 2026-12-03T12:00, to: 2026-12-03T10:00}
supervisors:
  - {area: s1, person: nobody}
  - {area: s2, person: a}
  - {area: s2, person: a}
  - {person: a}
`), shanghai, func(string) bool { return false })
	if err == nil {
		t.Fatal("a broken roster was accepted")
	}
	for _, want := range []string{
		`rosters.yaml:4: person "a" is listed twice`,
		`rosters.yaml:6: unit "nowhere" is not in the catalog`,
		`rosters.yaml:6: head "ghost" is not among the people`,
		`rosters.yaml:9: shift "day": day "someday"`,
		`rosters.yaml:9: shift "day": start: "8h"`,
		`rosters.yaml:9: shift "day": turn "month"`,
		`rosters.yaml:9: shift person "b" is not among the people`,
		`rosters.yaml:11: override: to 2026-12-03T10:00 is not after from`,
		`rosters.yaml:13: supervisor "nobody" is not among the people`,
		`rosters.yaml:15: area "s2" has two supervisors`,
		`rosters.yaml:16: a supervisor needs an area and a person`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	if _, err := Parse("rosters.yaml", []byte("rosters:\n  - unit: u\n    hed: a\n"), shanghai, nil); err == nil || !strings.Contains(err.Error(), "hed") {
		t.Errorf("a misspelt key was not refused: %v", err)
	}
}

func TestTheSampleCityHasSomeoneOnDutyInEveryUnitAllWeek(t *testing.T) {
	cat, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	r, err := ForCatalog("", cat)
	if err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, d := range cat.Departments() {
		if d.ID == catalog.GridDepartment {
			continue
		}
		for _, u := range d.Units {
			units = append(units, u.ID)
			if !r.Member(u.ID, SampleOfficer(u.ID)) {
				t.Errorf("the sample officer of %s is not its member", u.ID)
			}
		}
	}
	from := local("2026-12-01 00:00")
	if flagged := r.Flagged(units, from, from.Add(FlagWithin)); len(flagged) > 0 {
		t.Errorf("units with a gap: %v", flagged)
	}
	committed, err := os.ReadFile("sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(committed, sample) {
		t.Fatal("the embedded sample differs from sample.yaml")
	}
}
