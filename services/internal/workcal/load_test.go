package workcal_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/workcal"
)

// write puts a file in dir and returns its path.
func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.TrimPrefix(text, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTheEmbeddedYearsCarryTheirNoticesAndVerifiedMarks(t *testing.T) {
	t.Parallel()
	c := embedded(t)
	if got := c.Years(); len(got) != 2 || got[0] != 2025 || got[1] != 2026 {
		t.Fatalf("embedded years %v, want 2025 and 2026", got)
	}
	y, _ := c.Year(2025)
	if y.Source.Number != "国办发明电〔2024〕12号" || !y.Verified || y.File != "embedded:years/2025.yaml" {
		t.Errorf("2025: %+v", y)
	}
	y, _ = c.Year(2026)
	if !strings.Contains(y.Source.Title, "2026年部分节假日安排") || y.Source.Number != "" || y.Note == "" {
		t.Errorf("2026 should name its notice, give no unconfirmed number and say why: %+v", y.Source)
	}
	if c.Zone().String() != "Asia/Shanghai" {
		t.Errorf("zone %s", c.Zone())
	}
}

func TestABrokenYearIsRefusedWithEveryFaultAndItsLine(t *testing.T) {
	t.Parallel()
	p := write(t, t.TempDir(), "2025.yaml", `
year: 2025
verified: yes please
timezone: Asia/Shanghai
colour: red
hours:
  - {from: "09:00", to: "08:00"}
  - {from: "13:30", to: "17:30", lunch: true}
  - {from: "14:00", to: "18:00"}
holidays:
  - {name: 春节, from: 2025-01-28, to: 2025-02-04}
  - {name: 元宵, from: 2025-02-01, to: 2025-02-02}
  - {name: 元旦, from: 2024-12-31, to: 2025-01-01}
  - {name: 国庆节, from: 2025-10-08, to: 2025-10-01}
adjusted_workdays:
  - {date: 2025-01-27, for: 春节}
  - {date: 2025-02-01, for: 春节}
  - {date: 2026-01-03, for: 元旦}
  - {date: 2025-02-08, for: 除夕}
`)
	_, err := workcal.Load(p)
	if err == nil {
		t.Fatal("a broken year was accepted")
	}
	for _, want := range []string{
		p + `:1: the source is missing`,
		p + `:2: cannot unmarshal !!str ` + "`yes please`" + ` into bool`,
		p + `:4: unknown field "colour"`,
		p + `:6: working hours 09:00–08:00 end at or before they start`,
		p + `:7: unknown field "lunch"`,
		p + `:8: working hours 14:00–18:00 overlap 13:30–17:30`,
		p + `:11: holiday 元宵 (2025-02-01 to 2025-02-02) overlaps 春节 (2025-01-28 to 2025-02-04)`,
		p + `:12: from 2024-12-31 is outside the year 2025`,
		p + `:13: holiday 国庆节 ends on 2025-10-01, before it starts on 2025-10-08`,
		p + `:15: adjusted working day 2025-01-27 is a Monday: only a weekend day`,
		p + `:16: adjusted working day 2025-02-01 falls in holiday 春节`,
		p + `:17: date 2026-01-03 is outside the year 2025`,
		p + `:18: adjusted working day 2025-02-08: for "除夕" names no holiday of the year`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q:\n%v", want, err)
		}
	}
}

func TestAYearMissingItsEssentialsIsRefusedNamingEach(t *testing.T) {
	t.Parallel()
	p := write(t, t.TempDir(), "2027.yaml", `
year: 2028
source: {number: 国办发明电〔2026〕1号}
`)
	_, err := workcal.Load(p)
	for _, want := range []string{
		`:1: the file named 2027.yaml holds year 2028`,
		`:1: verified is missing`,
		`:1: the time zone is missing`,
		`:1: the working hours are missing`,
		`:2: the source is missing`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q:\n%v", want, err)
		}
	}
}

// city2025 is 2025 as a city might keep it: its own hours and a local holiday.
const city2025 = `
year: 2025
source: {title: 国务院办公厅关于2025年部分节假日安排的通知, number: 国办发明电〔2024〕12号}
verified: false
note: a city's own hours; the notice's holidays are left out but for one
timezone: Asia/Shanghai
hours:
  - {from: "08:30", to: "12:00"}
  - {from: "14:00", to: "17:30"}
holidays:
  - {name: 元旦, from: 2025-01-01}
`

func TestACitysYearReplacesTheEmbeddedOneAndKeepsTheOthers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "2025.yaml", city2025)
	write(t, dir, "README.txt", "not a year")
	c, err := workcal.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Years(); len(got) != 2 {
		t.Fatalf("years %v, want the city's 2025 and the embedded 2026", got)
	}
	y, _ := c.Year(2025)
	if y.File != filepath.Join(dir, "2025.yaml") || y.Verified || y.Holidays[0].Days() != 1 {
		t.Errorf("2025 is not the city's: %+v", y)
	}
	// 28 Jan is a working day in the city's file, from 08:30.
	if got, err := c.Add(local(t, "2025-01-27 17:30"), time.Hour); err != nil || !got.Equal(local(t, "2025-01-28 09:30")) {
		t.Errorf("Add on the city's hours = %s, %v; want 2025-01-28 09:30", got, err)
	}
	if y, _ := c.Year(2026); !strings.HasPrefix(y.File, "embedded:") {
		t.Errorf("2026 is not the embedded year: %s", y.File)
	}
}

func TestFilesThatClashOrCannotBeReadAreRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := write(t, dir, "a.yaml", city2025)
	b := write(t, dir, "b.yaml", city2025)
	if _, err := workcal.Load(a, b); err == nil || !strings.Contains(err.Error(), "year 2025 is given twice") {
		t.Errorf("two files of one year: %v", err)
	}
	utc := write(t, dir, "utc.yaml", strings.Replace(city2025, "Asia/Shanghai", "UTC", 1))
	if _, err := workcal.Load(utc); err == nil || !strings.Contains(err.Error(), "a calendar keeps one zone") {
		t.Errorf("a year in another zone: %v", err)
	}
	if _, err := workcal.Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds no .yaml") {
		t.Errorf("an empty folder: %v", err)
	}
	if _, err := workcal.Load(filepath.Join(dir, "absent.yaml")); err == nil {
		t.Error("a missing file was accepted")
	}
	broken := write(t, dir, "broken.yaml", "year: 2025\nholidays:\n  - {name: a\n")
	if _, err := workcal.Load(broken); err == nil || !strings.Contains(err.Error(), broken+":2: did not find expected") {
		t.Errorf("a file that is not YAML: %v", err)
	}
	empty := write(t, dir, "empty.yaml", "")
	if _, err := workcal.Load(empty); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty file: %v", err)
	}
}
