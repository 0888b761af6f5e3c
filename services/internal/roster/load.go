package roster

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// fileFormat is the rosters file:
//
//	people:
//	  - {id: wang-fang, name: 王芳}
//	rosters:
//	  - unit: urban-mgmt-xinhua
//	    head: li-qiang
//	    shifts:
//	      - name: day                 # the hand-overs are at start and end
//	        days: [mon, tue, wed, thu, fri]
//	        start: "08:30"
//	        end: "17:30"              # at or before start: the next day
//	        people: [wang-fang, zhao-lei]
//	        turn: week                # day or week: each person's turn, in this order
//	        since: 2026-01-05         # the first person's first turn
//	    overrides:
//	      - {people: [sun-li], from: 2026-12-03T08:30, to: 2026-12-04T08:30, reason: cover}
//	supervisors:                      # whom escalation chains tell for a street or the city
//	  - {area: xinhua, person: zhou-min}
//
// Times without an offset are the city's local time.
type fileFormat struct {
	People      []node[personFile]     `yaml:"people"`
	Rosters     []node[unitFile]       `yaml:"rosters"`
	Supervisors []node[supervisorFile] `yaml:"supervisors"`
}

type supervisorFile struct {
	Area   string `yaml:"area"`
	Person string `yaml:"person"`
}

type personFile struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
}

type unitFile struct {
	Unit      string               `yaml:"unit"`
	Head      string               `yaml:"head"`
	Shifts    []node[shiftFile]    `yaml:"shifts"`
	Overrides []node[overrideFile] `yaml:"overrides"`
}

type shiftFile struct {
	Name   string   `yaml:"name"`
	Days   []string `yaml:"days"`
	Start  string   `yaml:"start"`
	End    string   `yaml:"end"`
	People []string `yaml:"people"`
	Turn   string   `yaml:"turn"`
	Since  string   `yaml:"since"`
}

type overrideFile struct {
	People []string `yaml:"people"`
	From   string   `yaml:"from"`
	To     string   `yaml:"to"`
	Reason string   `yaml:"reason"`
}

// node is a value of the file with its line, refusing keys its type lacks.
type node[T any] struct {
	V    T
	Line int
}

// UnmarshalYAML decodes the value and keeps its line, refusing a key its type does not have.
func (n *node[T]) UnmarshalYAML(y *yaml.Node) error {
	n.Line = y.Line
	if y.Kind == yaml.MappingNode {
		known := map[string]bool{}
		for f := range reflect.TypeFor[T]().Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			known[name] = true
		}
		for i := 0; i+1 < len(y.Content); i += 2 {
			if k := y.Content[i]; !known[k.Value] {
				return fmt.Errorf("line %d: unknown field %q", k.Line, k.Value)
			}
		}
	}
	return y.Decode(&n.V)
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Load reads a rosters file; unitExists says which units the catalog has.
func Load(path string, zone *time.Location, unitExists func(string) bool) (*Rosters, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rosters: %w", err)
	}
	return Parse(filepath.Base(path), data, zone, unitExists)
}

// Parse builds the rosters from the YAML of the named file (see fileFormat), refusing a broken one
// with every fault and its file:line: a person or unit listed twice, a unit the catalog lacks, a
// head or shift person not among the people, a shift without days, times or people, a turn other
// than day or week, an override that ends before it starts.
func Parse(name string, data []byte, zone *time.Location, unitExists func(string) bool) (*Rosters, error) {
	var f fileFormat
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	switch err := dec.Decode(&f); {
	case errors.Is(err, io.EOF), err == nil && len(f.Rosters) == 0:
		// A file half written, or emptied by mistake, must not take every unit off duty.
		return nil, fmt.Errorf("%s: no rosters: a rosters file lists at least one unit's", name)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sum := sha256.Sum256(data)
	r := &Rosters{people: map[string]Person{}, units: map[string]*Unit{}, supervisors: map[string]string{}, zone: zone, version: hex.EncodeToString(sum[:6])}
	var errs []error
	fault := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	for _, p := range f.People {
		switch {
		case strings.TrimSpace(p.V.ID) == "":
			fault(p.Line, "a person needs an id")
		case r.people[p.V.ID] != (Person{}):
			fault(p.Line, "person %q is listed twice", p.V.ID)
		default:
			r.people[p.V.ID] = Person{ID: p.V.ID, Name: p.V.Name}
		}
	}
	known := func(line int, what, id string) {
		if _, ok := r.people[id]; !ok {
			fault(line, "%s %q is not among the people", what, id)
		}
	}
	for _, un := range f.Rosters {
		uf := un.V
		switch {
		case uf.Unit == "":
			fault(un.Line, "a roster needs its unit")
			continue
		case r.units[uf.Unit] != nil:
			fault(un.Line, "unit %q has two rosters", uf.Unit)
			continue
		case unitExists != nil && !unitExists(uf.Unit):
			fault(un.Line, "unit %q is not in the catalog", uf.Unit)
		}
		u := &Unit{ID: uf.Unit, Head: uf.Head}
		if uf.Head == "" {
			fault(un.Line, "unit %q needs a head, who receives what lands when nobody is on duty", uf.Unit)
		} else {
			known(un.Line, "head", uf.Head)
		}
		for _, sn := range uf.Shifts {
			s, problems := shift(sn.V, zone)
			for _, p := range problems {
				fault(sn.Line, "shift %q: %s", sn.V.Name, p)
			}
			for _, p := range s.People {
				known(sn.Line, "shift person", p)
			}
			u.Shifts = append(u.Shifts, s)
		}
		for _, on := range uf.Overrides {
			o := Override{People: on.V.People, Reason: on.V.Reason}
			var err1, err2 error
			o.From, err1 = localTime(on.V.From, zone)
			o.To, err2 = localTime(on.V.To, zone)
			switch {
			case err1 != nil || err2 != nil:
				fault(on.Line, "override: from and to must be times like 2026-12-03T08:30 (%v)", errors.Join(err1, err2))
			case !o.To.After(o.From):
				fault(on.Line, "override: to %s is not after from %s", on.V.To, on.V.From)
			case len(o.People) == 0:
				fault(on.Line, "override: names nobody")
			}
			for _, p := range o.People {
				known(on.Line, "override person", p)
			}
			u.Overrides = append(u.Overrides, o)
		}
		r.units[u.ID] = u
	}
	for _, sn := range f.Supervisors {
		switch sv := sn.V; {
		case sv.Area == "" || sv.Person == "":
			fault(sn.Line, "a supervisor needs an area and a person")
		case r.supervisors[sv.Area] != "":
			fault(sn.Line, "area %q has two supervisors", sv.Area)
		default:
			known(sn.Line, "supervisor", sv.Person)
			r.supervisors[sv.Area] = sv.Person
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// shift checks one shift of the file.
func shift(sf shiftFile, zone *time.Location) (Shift, []string) {
	s := Shift{Name: sf.Name, People: sf.People, Turn: Turn(sf.Turn)}
	var problems []string
	if s.Name == "" || s.Name == OverrideShift {
		problems = append(problems, fmt.Sprintf("needs a name other than %q", OverrideShift))
	}
	for _, d := range sf.Days {
		w, ok := weekdays[strings.ToLower(d)]
		if !ok {
			problems = append(problems, fmt.Sprintf("day %q is not one of mon, tue, wed, thu, fri, sat, sun", d))
			continue
		}
		s.Days = append(s.Days, w)
	}
	if len(s.Days) == 0 {
		problems = append(problems, "needs days")
	}
	var err error
	if s.Start, err = clock(sf.Start); err != nil {
		problems = append(problems, "start: "+err.Error())
	}
	if s.End, err = clock(sf.End); err != nil {
		problems = append(problems, "end: "+err.Error())
	}
	if len(s.People) == 0 {
		problems = append(problems, "needs people")
	}
	if s.Turn == "" {
		s.Turn = Weekly
	}
	if s.Turn != Daily && s.Turn != Weekly {
		problems = append(problems, fmt.Sprintf("turn %q is not day or week", sf.Turn))
	}
	since, err := time.ParseInLocation(time.DateOnly, sf.Since, zone)
	if sf.Since == "" {
		since = time.Date(2026, time.January, 5, 0, 0, 0, 0, zone) // a Monday
	} else if err != nil {
		problems = append(problems, fmt.Sprintf("since %q is not a date like 2026-01-05", sf.Since))
	}
	s.Since = since
	slices.Sort(s.Days)
	return s, problems
}

// clock reads a time of day, "08:30".
func clock(v string) (time.Duration, error) {
	t, err := time.Parse("15:04", v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day like 08:30", v)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// localTime reads an instant, in the city's time unless it names an offset.
func localTime(v string, zone *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02T15:04", v, zone)
}
