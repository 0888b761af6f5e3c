package console

import (
	"cmp"
	"crypto/rand"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// The roles of the supervisor's pages. The breach board is also a dispatcher's, since
// ListBreaches serves dispatchers within their area as it serves supervisors; urging, deciding
// extensions and the scorecards are the supervisor's alone, as the API has them. (Officers may
// list their own unit's breaches, but their inbox already shows what is overdue.)
var (
	svSupervisors = []authx.Role{authx.RoleSupervisor}
	svBoardRoles  = []authx.Role{authx.RoleSupervisor, authx.RoleDispatcher}
)

// supervisorRoutes adds the supervisor's pages.
func (c *Console) supervisorRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /console/breaches", c.signedIn(svBoardRoles, c.svBreaches))
	m.HandleFunc("GET /console/breaches/events", c.signedIn(svBoardRoles, c.svBreachEvents))
	m.HandleFunc("GET /console/extensions", c.signedIn(svSupervisors, c.svExtensions))
	m.HandleFunc("GET /console/issues/{id}/supervise", c.signedIn(svSupervisors, c.svSupervise))
	m.HandleFunc("POST /console/issues/{id}/urge", c.signedIn(svSupervisors, c.svUrge))
	m.HandleFunc("POST /console/issues/{id}/decide-extension", c.signedIn(svSupervisors, c.svDecideExtension))
	m.HandleFunc("GET /console/scorecards", c.signedIn(svSupervisors, c.svScorecards))
}

// Limits the API sets on what a supervisor writes, checked here too so that a form too long is
// refused in the person's own language before any call.
const (
	// svMaxNote is the most characters an urge's note may have.
	svMaxNote = 500
	// svMaxReason is the most characters an extension decision's reason may have.
	svMaxReason = 500
	// svMaxRequestID is the longest idempotency key the API accepts.
	svMaxRequestID = 64
	// svMaxID is the longest id of an area, a department or a unit a form may name.
	svMaxID = 64
	// svMaxPeriod is the longest period of scorecards, as the API allows.
	svMaxPeriod = 366 * 24 * time.Hour
)

// supervisorNav is the links between the supervisor's pages, the one shown marked. A
// dispatcher sees the board alone, so has none.
type supervisorNav struct {
	Links []svNavLink
}

// svNavLink is one link of the navigation.
type svNavLink struct {
	Href, Label string
	Current     bool
}

// svNav is the navigation of page current ("breaches", "extensions", "scorecards", or "" for a
// page of none of them) for the person of q.
func (q *request) svNav(current string) supervisorNav {
	var n supervisorNav
	if q.session.Principal.Role != authx.RoleSupervisor {
		return n
	}
	for _, x := range []struct{ name, href, key string }{
		{"breaches", "/console/breaches", "supervisor.nav.breaches"},
		{"extensions", "/console/extensions", "supervisor.nav.extensions"},
		{"scorecards", "/console/scorecards", "supervisor.nav.scorecards"},
		{"map", "/console/map", "nav.map"},
	} {
		n.Links = append(n.Links, svNavLink{Href: x.href, Label: q.lang.T(x.key), Current: x.name == current})
	}
	return n
}

// svDirectory names the catalog's departments, units, areas and categories for people and knows
// the area tree. A part it could not read leaves ids to show instead of names: a page that names
// a unit by its id is still of use.
type svDirectory struct {
	names      map[string]string // department, unit and area ids → names
	categories map[string]string
	areas      map[string]*whistlev1.Area
	areaList   []*whistlev1.Area // parents before children, as ListAreas gives them
	depts      []*whistlev1.Department
}

// svDirectory reads the catalog through the routing service.
func (c *Console) svDirectory(q *request) svDirectory {
	d := svDirectory{names: map[string]string{}, areas: map[string]*whistlev1.Area{}, categories: c.categoryNames(q)}
	routing := whistlev1.NewRoutingServiceClient(c.cfg.Conn)
	if resp, err := routing.ListDepartments(q.r.Context(), &whistlev1.ListDepartmentsRequest{}, q.call()); err != nil {
		c.cfg.Logger.Warn("console: departments", "err", err)
	} else {
		d.depts = resp.GetDepartments()
		for _, dp := range d.depts {
			d.names[dp.GetId()] = dp.GetName()
			for _, u := range dp.GetUnits() {
				d.names[u.GetId()] = u.GetName()
			}
		}
	}
	if resp, err := routing.ListAreas(q.r.Context(), &whistlev1.ListAreasRequest{}, q.call()); err != nil {
		c.cfg.Logger.Warn("console: areas", "err", err)
	} else {
		d.areaList = resp.GetAreas()
		for _, a := range d.areaList {
			d.areas[a.GetId()] = a
			d.names[a.GetId()] = a.GetName()
		}
	}
	return d
}

// name is the name of a department, unit or area, or its id when the catalog did not say.
func (d svDirectory) name(id string) string { return nameOr(d.names, id) }

// unit names a department's unit: the department alone when the unit is the department itself
// (a department without units of its own), else both.
func (d svDirectory) unit(dept, unit string) string {
	if unit == "" || unit == dept {
		return d.name(dept)
	}
	return d.name(dept) + " · " + d.name(unit)
}

// place names where an issue is: its street, and its grid.
func (d svDirectory) place(street, grid string) string {
	switch {
	case street == "":
		return d.name(grid)
	case grid == "":
		return d.name(street)
	}
	return d.name(street) + " · " + d.name(grid)
}

// within reports whether area lies in scope (is it, or below it) by the area tree.
func (d svDirectory) within(area, scope string) bool {
	for id, n := area, 0; id != "" && n < 16; n++ { // the tree is 4 levels deep; the bound stops a loop in a broken one
		if id == scope {
			return true
		}
		a, ok := d.areas[id]
		if !ok {
			return false
		}
		id = a.GetParentId()
	}
	return false
}

// svOption is one choice of a select.
type svOption struct {
	Value, Label string
	Selected     bool
}

// svOptionGroup is a group of choices of a select, under its label.
type svOptionGroup struct {
	Label   string
	Options []svOption
}

// areaOptions are the streets and communities in scope a list may be narrowed to, grouped by
// street (grids are too many to choose from a list).
func (d svDirectory) areaOptions(l lang, scope, chosen string) []svOptionGroup {
	var groups []svOptionGroup
	for _, a := range d.areaList {
		if a.GetLevel() != "street" || !d.within(a.GetId(), scope) && !d.within(scope, a.GetId()) {
			continue
		}
		g := svOptionGroup{Label: a.GetName()}
		if d.within(a.GetId(), scope) {
			g.Options = append(g.Options, svOption{Value: a.GetId(), Label: l.T("supervisor.filter.whole_street", a.GetName()), Selected: a.GetId() == chosen})
		}
		for _, b := range d.areaList {
			if b.GetLevel() == "community" && b.GetParentId() == a.GetId() && d.within(b.GetId(), scope) {
				g.Options = append(g.Options, svOption{Value: b.GetId(), Label: b.GetName(), Selected: b.GetId() == chosen})
			}
		}
		if len(g.Options) > 0 {
			groups = append(groups, g)
		}
	}
	return groups
}

// departmentOptions are the departments and their units a list may be narrowed to.
func (d svDirectory) departmentOptions(l lang, chosen string) []svOptionGroup {
	var groups []svOptionGroup
	for _, dp := range d.depts {
		g := svOptionGroup{Label: dp.GetName(), Options: []svOption{{Value: dp.GetId(), Selected: dp.GetId() == chosen,
			Label: l.T("supervisor.filter.all_units", dp.GetName())}}}
		for _, u := range dp.GetUnits() {
			if u.GetId() != dp.GetId() {
				g.Options = append(g.Options, svOption{Value: u.GetId(), Label: u.GetName(), Selected: u.GetId() == chosen})
			}
		}
		groups = append(groups, g)
	}
	return groups
}

// svDateLayout is how a date input sends a day; svMinuteLayout how a datetime-local input sends a
// minute.
const (
	svDateLayout   = "2006-01-02"
	svMinuteLayout = "2006-01-02T15:04"
)

// svDay reads a date field as the start of that day in the city's time zone.
func (c *Console) svDay(v string) (time.Time, error) {
	t, err := time.ParseInLocation(svDateLayout, strings.TrimSpace(v), c.cfg.Zone)
	if err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// svNextDay is the start of the day after t's, in the city's time zone (a day is not always 24
// hours long where clocks change).
func (c *Console) svNextDay(t time.Time) time.Time {
	t = t.In(c.cfg.Zone)
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, c.cfg.Zone)
}

// svToday is the start of the current day in the city's time zone.
func (c *Console) svToday() time.Time {
	now := c.cfg.Now().In(c.cfg.Zone)
	return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, c.cfg.Zone)
}

// svPeriod reads a from and to date of a form: the days from the start of from to the end of to,
// both in the city's time zone. Either may be empty, leaving that side open; the error is the
// person's message naming the field that is wrong.
func (c *Console) svPeriod(l lang, from, to string) (start, end time.Time, msg string) {
	if from != "" {
		t, err := c.svDay(from)
		if err != nil {
			return start, end, l.T("supervisor.invalid.date", l.T("supervisor.field.from"))
		}
		start = t
	}
	if to != "" {
		t, err := c.svDay(to)
		if err != nil {
			return start, end, l.T("supervisor.invalid.date", l.T("supervisor.field.to"))
		}
		end = c.svNextDay(t)
	}
	if !start.IsZero() && !end.IsZero() && !end.After(start) {
		return start, end, l.T("supervisor.invalid.to_before_from")
	}
	return start, end, ""
}

// svCheckID reports whether an id a form names could be one: the API says whether it is.
func svCheckID(v string) bool {
	if len(v) > svMaxID {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r)) {
			return false
		}
	}
	return true
}

// svCheckRequestID reports whether a form's idempotency key is one the API takes: 1 to 64 letters,
// digits and . _ : -.
func svCheckRequestID(v string) bool { return v != "" && svCheckID(v) && len(v) <= svMaxRequestID }

// svRequestID is a fresh idempotency key for a form: the form carries it, so that the same form
// sent twice (a double click, a retry after a lost answer) acts once.
func svRequestID() string { return rand.Text() }

// svText reads a free-text field: trimmed, valid UTF-8, required or not, at most max characters.
// msg is the person's message naming the field when it is wrong.
func svText(l lang, v, field string, max int, required bool) (string, string) {
	v = strings.TrimSpace(v)
	switch n := utf8.RuneCountInString(v); {
	case !utf8.ValidString(v):
		return "", l.T("supervisor.invalid.text", l.T(field))
	case n == 0 && required:
		return "", l.T("supervisor.invalid.required", l.T(field))
	case n > max:
		return "", l.T("supervisor.invalid.too_long", l.T(field), max, n)
	}
	return v, ""
}

// svDeadlineKind is a deadline's kind as people read it: report in (报到) or resolve (办结).
func svDeadlineKind(l lang, k whistlev1.DeadlineKind) string {
	switch k {
	case whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN:
		return l.T("supervisor.kind.report_in")
	case whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE:
		return l.T("supervisor.kind.resolve")
	}
	return l.T("supervisor.kind.unspecified")
}

// svLateness writes how long past a deadline, as people read it; under a minute is said so rather
// than "0 min".
func svLateness(l lang, d time.Duration) string {
	if d < time.Minute {
		return l.T("supervisor.time.under_minute")
	}
	return duration(l, d)
}

// svUnitOf is the unit of an assignment: the department itself for a department without units.
func svUnitOf(a *whistlev1.Assignment) string { return cmp.Or(a.GetUnitId(), a.GetDepartmentId()) }
