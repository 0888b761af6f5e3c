package console

import (
	"encoding/json"
	"html/template"
	"net/http"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// mapRoles are those who watch an area as a whole: supervisors, and dispatchers, who route it.
var mapRoles = []authx.Role{authx.RoleSupervisor, authx.RoleDispatcher}

// mapMaxIssues and mapMaxBreaches bound what the map counts, newest first, so that a city's page
// stays quick; the page says when it counted only so many.
const (
	mapMaxIssues   = 2000
	mapMaxBreaches = 1000
	mapPageSize    = 200
)

// mapRoutes adds the map of the caller's area.
func (c *Console) mapRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /console/map", c.signedIn(mapRoles, c.areaMap))
}

// mapArea is a grid as a map draws it: its id, its name and its boundary, a GeoJSON geometry.
type mapArea struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Boundary json.RawMessage `json:"boundary"`
}

// mapGrid is one grid on the area's map: its boundary, and what is open and breached in it.
type mapGrid struct {
	mapArea
	Open     int `json:"open"`
	Breaches int `json:"breaches"` // breaches not yet cleared
}

// mapData is a map's JSON data block, which static/map.js draws: mapGrid on the area's map,
// mapArea where a grid is drawn for its boundary alone (the grid worker's raise form).
type mapData[G mapArea | mapGrid] struct {
	Grids []G    `json:"grids"`
	Tiles string `json:"tiles,omitempty"` // the city's tile server, if it has one
	// Words are the page's words the script shows, in the page's language.
	Words map[string]string `json:"words"`
}

// mapBlock is data as the page's JSON block; json.Marshal escapes <, > and & so it cannot end the
// script element.
func mapBlock[G mapArea | mapGrid](data mapData[G]) (template.JS, error) {
	b, err := json.Marshal(data)
	return template.JS(b), err
}

// mapPage is what the map's template is given.
type mapPage struct {
	Data              template.JS
	Capped            bool
	Grids, Unmapped   int
	OpenAll, Breaches int
}

// scopeGrids are the grids of the caller's scope that have a boundary, in the catalog's order, and
// how many have none. ListAreas is open to every signed-in person, so this serves any role whose
// scope is an area, down to a grid worker's one grid.
func (c *Console) scopeGrids(q *request) (grids []mapArea, unmapped int, err error) {
	scope := q.session.Principal.Scope
	areas, err := whistlev1.NewRoutingServiceClient(c.cfg.Conn).ListAreas(q.r.Context(), &whistlev1.ListAreasRequest{}, q.call())
	if err != nil {
		return nil, 0, err
	}
	parent := map[string]string{}
	for _, a := range areas.GetAreas() {
		parent[a.GetId()] = a.GetParentId()
	}
	within := func(id string) bool { // whether area id lies in the caller's scope
		for ; id != ""; id = parent[id] {
			if id == scope {
				return true
			}
		}
		return scope == authx.CityScope
	}
	for _, a := range areas.GetAreas() {
		if a.GetLevel() != "grid" || !within(a.GetId()) {
			continue
		}
		if a.GetBoundaryGeojson() == "" {
			unmapped++
			continue
		}
		grids = append(grids, mapArea{ID: a.GetId(), Name: a.GetName(), Boundary: json.RawMessage(a.GetBoundaryGeojson())})
	}
	return grids, unmapped, nil
}

// areaMap draws the grids of the caller's area from the catalog's boundaries, each coloured by its
// open issues and the breaches not cleared, so that a supervisor sees where things stand.
func (c *Console) areaMap(q *request) {
	areas, unmapped, err := c.scopeGrids(q)
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	p := mapPage{Unmapped: unmapped}
	grids := make(map[string]*mapGrid, len(areas))
	for _, a := range areas {
		grids[a.ID] = &mapGrid{mapArea: a}
	}
	if p.Capped, err = c.countOpen(q, grids); err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	capped, err := c.countBreaches(q, grids)
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	p.Capped = p.Capped || capped
	data := mapData[mapGrid]{Tiles: c.cfg.MapTiles, Words: map[string]string{
		"open": q.lang.T("map.open"), "breaches": q.lang.T("map.breaches"), "board": q.lang.T("map.board"),
	}}
	for _, a := range areas {
		g := grids[a.ID]
		data.Grids = append(data.Grids, *g)
		p.OpenAll += g.Open
		p.Breaches += g.Breaches
	}
	p.Grids = len(data.Grids)
	if p.Data, err = mapBlock(data); err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	c.render(q.w, http.StatusOK, "map.html", page{L: q.lang, Session: &q.session, Path: q.r.URL.Path, Data: p})
}

// countOpen counts the issues still open in each grid, newest first up to mapMaxIssues; true when
// it stopped there.
func (c *Console) countOpen(q *request, grids map[string]*mapGrid) (bool, error) {
	intake := whistlev1.NewIntakeServiceClient(c.cfg.Conn)
	req := &whistlev1.ListIssuesRequest{PageSize: mapPageSize}
	for seen := 0; ; {
		resp, err := intake.ListIssues(q.r.Context(), req, q.call())
		if err != nil {
			return false, err
		}
		for _, is := range resp.GetIssues() {
			st := is.GetStatus()
			if g, ok := grids[is.GetGridId()]; ok && st != whistlev1.IssueStatus_ISSUE_STATUS_CLOSED && st != whistlev1.IssueStatus_ISSUE_STATUS_LINKED {
				g.Open++
			}
		}
		seen += len(resp.GetIssues())
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return false, nil
		}
		if seen >= mapMaxIssues {
			return true, nil
		}
	}
}

// countBreaches counts the breaches not yet cleared in each grid, newest first up to
// mapMaxBreaches; true when it stopped there.
func (c *Console) countBreaches(q *request, grids map[string]*mapGrid) (bool, error) {
	escalation := whistlev1.NewEscalationServiceClient(c.cfg.Conn)
	req := &whistlev1.ListBreachesRequest{PageSize: mapPageSize}
	for seen := 0; ; {
		resp, err := escalation.ListBreaches(q.r.Context(), req, q.call())
		if err != nil {
			return false, err
		}
		for _, b := range resp.GetBreaches() {
			if g, ok := grids[b.GetGridId()]; ok && b.GetClearedAt() == nil {
				g.Breaches++
			}
		}
		seen += len(resp.GetBreaches())
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return false, nil
		}
		if seen >= mapMaxBreaches {
			return true, nil
		}
	}
}
