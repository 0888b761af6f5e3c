package workcal

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the years' zone must load on a machine without a zoneinfo database

	"go.yaml.in/yaml/v3"
)

// embedded are the years the package ships, one file each.
//
//go:embed years/*.yaml
var embedded embed.FS

// Embedded is the calendar of the years the package ships.
func Embedded() (*Calendar, error) { return Load() }

// Load is the calendar of the embedded years and the year files at paths, each a file or a
// folder whose *.yaml and *.yml files are read: a city's own years, beside the embedded ones. A
// year given at paths replaces the embedded one of that year (a city with its own hours, or a
// local holiday). Every fault of every file is returned at once, each with its file and line.
func Load(paths ...string) (*Calendar, error) {
	var errs []error
	byYear := map[int]*Year{}
	names, err := fs.Glob(embedded, "years/*.yaml")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		data, err := embedded.ReadFile(name)
		if err != nil {
			return nil, err
		}
		y, err := parse("embedded:"+name, path.Base(name), data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byYear[y.Year] = y
	}
	given := map[int]*Year{}
	for _, p := range paths {
		files, err := yearFiles(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("read calendar: %w", err))
				continue
			}
			y, err := parse(f, filepath.Base(f), data)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if other, dup := given[y.Year]; dup {
				errs = append(errs, fmt.Errorf("%s: year %d is given twice, here and in %s", f, y.Year, other.File))
				continue
			}
			given[y.Year], byYear[y.Year] = y, y
		}
	}
	years := slices.SortedFunc(maps.Values(byYear), func(a, b *Year) int { return a.Year - b.Year })
	for _, y := range years[min(1, len(years)):] {
		if y.Zone.String() != years[0].Zone.String() {
			errs = append(errs, fmt.Errorf("%s: time zone %s differs from %s of %s: a calendar keeps one zone", y.File, y.Zone, years[0].Zone, years[0].File))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(years) == 0 {
		return nil, errors.New("workcal: no year to make a calendar of")
	}
	return newCalendar(years), nil
}

// yearFiles are the year files at p: p itself, or the YAML files of the folder p, in name order.
func yearFiles(p string) ([]string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("read calendar: %w", err)
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("read calendar: %w", err)
	}
	var files []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, filepath.Join(p, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("read calendar: %s holds no .yaml or .yml file", p)
	}
	return files, nil
}

// yearFile is a year file, as the package doc shows it.
type yearFile struct {
	Year     node[int]            `yaml:"year"`
	Source   node[sourceFile]     `yaml:"source"`
	Verified node[bool]           `yaml:"verified"`
	Note     string               `yaml:"note"`
	TimeZone node[string]         `yaml:"timezone"`
	Hours    node[[]node[clock]]  `yaml:"hours"`
	Holidays []node[holidayFile]  `yaml:"holidays"`
	Adjusted []node[adjustedFile] `yaml:"adjusted_workdays"`
}

type sourceFile struct {
	Title  string `yaml:"title"`
	Number string `yaml:"number"`
	Issued string `yaml:"issued"`
}

type clock struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

type holidayFile struct {
	Name string `yaml:"name"`
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

type adjustedFile struct {
	Date string `yaml:"date"`
	For  string `yaml:"for"`
}

// node is a value of the file with its line; a line of 0 means the key was not there.
type node[T any] struct {
	V       T
	Line    int
	unknown []fault // keys T does not have
}

// UnmarshalYAML decodes the value and keeps its line, noting each key its type does not have (a
// misspelt "holiday" must not quietly make every holiday a working day). Unknown keys are noted
// rather than returned so that the value is kept and checked too: every fault of a file is found
// in one go.
func (n *node[T]) UnmarshalYAML(y *yaml.Node) error {
	n.Line = y.Line
	if t := reflect.TypeFor[T](); y.Kind == yaml.MappingNode && t.Kind() == reflect.Struct {
		known := map[string]bool{}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			known[name] = true
		}
		for i := 0; i+1 < len(y.Content); i += 2 {
			if k := y.Content[i]; !known[k.Value] {
				n.unknown = append(n.unknown, fault{k.Line, fmt.Sprintf("unknown field %q", k.Value)})
			}
		}
	}
	return y.Decode(&n.V)
}

// unknownKeys are the keys of the file its format does not have.
func unknownKeys(f node[yearFile]) []fault {
	out := slices.Concat(f.unknown, f.V.Source.unknown)
	for _, h := range f.V.Hours.V {
		out = append(out, h.unknown...)
	}
	for _, h := range f.V.Holidays {
		out = append(out, h.unknown...)
	}
	for _, a := range f.V.Adjusted {
		out = append(out, a.unknown...)
	}
	return out
}

// fault is something wrong at a line of a file.
type fault struct {
	line int
	text string
}

// yamlLine reads the line yaml.v3 puts at the start of its messages.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// parse reads one year file, named file in messages and base on disk, refusing a broken one
// with every fault and its line.
func parse(file, base string, data []byte) (*Year, error) {
	var f node[yearFile]
	var faults []fault
	var te *yaml.TypeError
	switch err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&f); {
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s: the file is empty", file)
	case errors.As(err, &te):
		for _, e := range te.Errors {
			if m := yamlLine.FindStringSubmatch(e); m != nil {
				line, _ := strconv.Atoi(m[1])
				faults = append(faults, fault{line, m[2]})
			} else {
				faults = append(faults, fault{1, e})
			}
		}
	case err != nil:
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("%s:%s: %s", file, m[1], m[2])
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	faults = append(faults, unknownKeys(f)...)
	y, more := check(f.V, base)
	faults = append(faults, more...)
	if len(faults) > 0 {
		slices.SortStableFunc(faults, func(a, b fault) int { return cmp.Compare(a.line, b.line) })
		errs := make([]error, len(faults))
		for i, ft := range faults {
			errs[i] = fmt.Errorf("%s:%d: %s", file, ft.line, ft.text)
		}
		return nil, errors.Join(errs...)
	}
	y.File = file
	return y, nil
}

// check builds the year from its decoded file and finds what is wrong with it: dates outside
// the year, holidays that overlap, an adjusted working day that is not a weekend day or falls
// in a holiday, working hours that end before they start or overlap, a missing source.
func check(f yearFile, base string) (*Year, []fault) {
	var faults []fault
	bad := func(line int, format string, args ...any) {
		faults = append(faults, fault{max(line, 1), fmt.Sprintf(format, args...)})
	}
	y := &Year{Year: f.Year.V, Verified: f.Verified.V, Note: strings.TrimSpace(f.Note)}
	switch n, err := strconv.Atoi(strings.TrimSuffix(base, filepath.Ext(base))); {
	case f.Year.Line == 0:
		bad(1, "the year is missing")
	case y.Year < 1900 || y.Year > 2200:
		bad(f.Year.Line, "year %d is not between 1900 and 2200", y.Year)
	case err == nil && n != y.Year:
		bad(f.Year.Line, "the file named %s holds year %d", base, y.Year)
	}
	if f.Source.Line == 0 || strings.TrimSpace(f.Source.V.Title) == "" {
		bad(f.Source.Line, "the source is missing: give the title of the notice the year follows")
	}
	if f.Verified.Line == 0 {
		bad(1, "verified is missing: say whether the days were checked against the notice (true or false)")
	}
	y.Zone = time.UTC
	switch z, err := time.LoadLocation(f.TimeZone.V); {
	case f.TimeZone.Line == 0:
		bad(1, "the time zone is missing (timezone: Asia/Shanghai)")
	case err != nil:
		bad(f.TimeZone.Line, "time zone %q: %v", f.TimeZone.V, err)
	default:
		y.Zone = z
	}

	date := func(line int, what, v string) (time.Time, bool) {
		d, err := time.ParseInLocation(time.DateOnly, v, y.Zone)
		switch {
		case err != nil:
			bad(line, "%s %q is not a date like 2025-01-28", what, v)
			return time.Time{}, false
		case d.Year() != y.Year:
			bad(line, "%s %s is outside the year %d", what, v, y.Year)
			return time.Time{}, false
		}
		return d, true
	}
	src := f.Source.V
	y.Source = Source{Title: strings.TrimSpace(src.Title), Number: strings.TrimSpace(src.Number)}
	if src.Issued != "" {
		if d, err := time.ParseInLocation(time.DateOnly, src.Issued, y.Zone); err != nil {
			bad(f.Source.Line, "issued %q is not a date like 2024-11-12", src.Issued)
		} else {
			y.Source.Issued = d
		}
	}

	y.Hours = hours(f.Hours, bad)

	lineOf := map[*Holiday]int{}
	var holidays []*Holiday
	for _, h := range f.Holidays {
		if strings.TrimSpace(h.V.Name) == "" {
			bad(h.Line, "a holiday needs a name")
		}
		to := cmp.Or(h.V.To, h.V.From)
		from, ok1 := date(h.Line, "from", h.V.From)
		last, ok2 := date(h.Line, "to", to)
		switch {
		case !ok1 || !ok2:
			continue
		case last.Before(from):
			bad(h.Line, "holiday %s ends on %s, before it starts on %s", h.V.Name, to, h.V.From)
			continue
		}
		hd := &Holiday{Name: strings.TrimSpace(h.V.Name), From: from, To: last}
		lineOf[hd] = h.Line
		holidays = append(holidays, hd)
	}
	slices.SortStableFunc(holidays, func(a, b *Holiday) int { return a.From.Compare(b.From) })
	var reach *Holiday // of the holidays so far, the one that ends last
	for _, h := range holidays {
		if reach != nil && !h.From.After(reach.To) {
			bad(lineOf[h], "holiday %s (%s to %s) overlaps %s (%s to %s)", h.Name, dateText(h.From), dateText(h.To), reach.Name, dateText(reach.From), dateText(reach.To))
		}
		if reach == nil || h.To.After(reach.To) {
			reach = h
		}
		y.Holidays = append(y.Holidays, *h)
	}

	seen := map[int]bool{} // by day of the year
	for _, a := range f.Adjusted {
		d, ok := date(a.Line, "date", a.V.Date)
		if !ok {
			continue
		}
		if seen[d.YearDay()] {
			bad(a.Line, "adjusted working day %s is listed twice", a.V.Date)
			continue
		}
		seen[d.YearDay()] = true
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			bad(a.Line, "adjusted working day %s is a %s: only a weekend day is made a working day", a.V.Date, wd)
		}
		for _, h := range y.Holidays {
			if !d.Before(h.From) && !d.After(h.To) {
				bad(a.Line, "adjusted working day %s falls in holiday %s (%s to %s)", a.V.Date, h.Name, dateText(h.From), dateText(h.To))
			}
		}
		if !slices.ContainsFunc(y.Holidays, func(h Holiday) bool { return h.Name == strings.TrimSpace(a.V.For) }) {
			bad(a.Line, "adjusted working day %s: for %q names no holiday of the year", a.V.Date, a.V.For)
		}
		y.Adjusted = append(y.Adjusted, AdjustedDay{Date: d, For: strings.TrimSpace(a.V.For)})
	}
	slices.SortFunc(y.Adjusted, func(a, b AdjustedDay) int { return a.Date.Compare(b.Date) })
	return y, faults
}

// hours reads the working spans of a day: at least one, each ending after it starts, none
// overlapping another.
func hours(f node[[]node[clock]], bad func(int, string, ...any)) []Span {
	if len(f.V) == 0 {
		bad(f.Line, "the working hours are missing: give the spans of a working day")
		return nil
	}
	var spans []Span
	lineOf := map[Span]int{}
	for _, c := range f.V {
		from, err1 := timeOfDay(c.V.From)
		to, err2 := timeOfDay(c.V.To)
		switch {
		case err1 != nil || err2 != nil:
			bad(c.Line, "working hours: %v", errors.Join(err1, err2))
			continue
		case to <= from:
			bad(c.Line, "working hours %s–%s end at or before they start", c.V.From, c.V.To)
			continue
		}
		s := Span{From: from, To: to}
		lineOf[s] = c.Line
		spans = append(spans, s)
	}
	slices.SortStableFunc(spans, func(a, b Span) int { return cmp.Compare(a.From, b.From) })
	for i := 1; i < len(spans); i++ {
		if spans[i].From < spans[i-1].To {
			bad(lineOf[spans[i]], "working hours %s overlap %s", spans[i], spans[i-1])
		}
	}
	return spans
}

// timeOfDay reads "09:00" as the time since midnight; "24:00" is the day's end.
func timeOfDay(v string) (time.Duration, error) {
	h, m, ok := strings.Cut(v, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(h) != 2 || len(m) != 2 || hh > 24 || mm > 59 || hh == 24 && mm != 0 || hh < 0 || mm < 0 {
		return 0, fmt.Errorf("%q is not a time of day like 09:00", v)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// dateText is a date as the files write it.
func dateText(t time.Time) string { return t.Format(time.DateOnly) }
