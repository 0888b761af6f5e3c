package console

import (
	"html/template"
	"net/http"
	"strings"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// gridWorkers are the roles the grid worker's pages are for.
var gridWorkers = []authx.Role{authx.RoleGridWorker}

// The grid worker's pages.
const (
	// gridPath is the grid worker's page: the raise form and the grid's issues.
	gridPath = Path + "grid"
	// gridRaisePath is where the raise form posts.
	gridRaisePath = Path + "raise"
	// gridIssuePath is the start of a grid issue's page, where it is verified and rated.
	gridIssuePath = gridPath + "/issues/"
)

// The intake API's limits, which the forms check at the edge so that a person is told what is
// wrong in their language before a byte goes to the services; the API checks them again.
const (
	// gridMaxPhotos is how many photos a raise names.
	gridMaxPhotos = evidence.MaxPhotosPerRaise
	// gridMaxPhotoBytes is the largest photo the API stores.
	gridMaxPhotoBytes = evidence.MaxPhotoBytes
	// gridMaxText is the most characters a raise's text has, as intake's RaiseIssue takes it.
	gridMaxText = 2000
	// gridMaxRemark is the most characters a verification's reason or a rating's comment has.
	gridMaxRemark = 500
)

// Bounds on the forms' bodies, read before anything else is.
const (
	// gridMaxRaiseBody bounds a raise form: every photo at its largest, and a megabyte for the other
	// fields and the multipart framing.
	gridMaxRaiseBody = gridMaxPhotos*gridMaxPhotoBytes + 1<<20
	// gridRaiseMemory is how much of a raise form is held in memory; the rest of its photos wait
	// in temporary files, which the HTTP server removes when the request ends.
	gridRaiseMemory = 8 << 20
	// gridMaxSmallForm bounds a form of a few short fields (a verification, a rating).
	gridMaxSmallForm = 64 << 10
)

// gridPageSize is how many of the grid's issues a page lists.
const gridPageSize = 30

// gridWorkerRoutes adds the grid worker's pages.
func (c *Console) gridWorkerRoutes(m *http.ServeMux) {
	m.HandleFunc("GET "+gridPath, c.signedIn(gridWorkers, c.gridPage))
	m.HandleFunc("POST "+gridRaisePath, c.gridRaiseBody(c.signedIn(gridWorkers, c.gridRaise)))
	m.HandleFunc("GET "+gridIssuePath+"{id}", c.signedIn(gridWorkers, c.gridIssue))
	m.HandleFunc("POST "+gridIssuePath+"{id}/verify", gridBounded(gridMaxSmallForm, c.signedIn(gridWorkers, c.gridVerify)))
	m.HandleFunc("POST "+gridIssuePath+"{id}/rate", gridBounded(gridMaxSmallForm, c.signedIn(gridWorkers, c.gridRate)))
	m.HandleFunc("GET "+gridIssuePath+"{id}/photos/{photo}", c.signedIn(gridWorkers, c.gridPhoto))
}

// gridBounded limits the body h may read to n bytes; a longer form fails to parse, and so carries
// no CSRF token and is refused.
func gridBounded(n int64, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h(w, r)
	}
}

// gridOption is one choice of a picker: the value sent, and the name shown.
type gridOption struct{ Value, Name string }

// gridView is what the grid worker's page is given.
type gridView struct {
	// CSRF is the session's token, which every form carries back.
	CSRF string
	// Grid is the worker's grid, where a raise is placed.
	Grid string
	// Categories and Urgencies are the raise form's choices.
	Categories, Urgencies []gridOption
	// Form is the raise form, fresh or as it was sent.
	Form gridRaiseForm
	// Map is the JSON block of the map on which the form's point is pinned; empty when there is
	// no boundary of the grid to draw, and the page then has no map.
	Map template.JS
	// Issues are the grid's issues on this page, newest first.
	Issues []gridRow
	// Next is the next page's token; empty on the last page.
	Next string
	// The limits, for the form's hints and for gridworker.js to check photos before they are sent.
	MaxPhotos, MaxPhotoBytes, MaxPhotoMB, MaxText int
}

// gridRow is one of the grid's issues, with what the grid worker may do about it.
type gridRow struct {
	issueRow
	// Urgency is how urgent it is, in the person's language.
	Urgency string
	// Verify is set while the issue waits for the grid worker's check on site.
	Verify bool
	// Rate is set when the grid worker raised it and may rate how it was handled.
	Rate bool
	// Mine is set when the grid worker raised it.
	Mine bool
}

// gridUrgency is an urgency a raise may have: the form's value and the API's urgency.
type gridUrgency struct {
	value string
	u     whistlev1.Urgency
}

// gridUrgencies are the urgencies a raise may have, in the form's order; the first is the default.
var gridUrgencies = []gridUrgency{
	{"normal", whistlev1.Urgency_URGENCY_NORMAL},
	{"urgent", whistlev1.Urgency_URGENCY_URGENT},
	{"emergency", whistlev1.Urgency_URGENCY_EMERGENCY},
}

// gridPage is the grid worker's page, with a fresh raise form.
func (c *Console) gridPage(q *request) {
	cats, err := c.gridCategories(q)
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	c.gridRender(q, http.StatusOK, cats, newGridRaiseForm(), "")
}

// gridRender writes the grid worker's page with the raise form f (fresh, or as sent with what is
// wrong with it) and msg, the refusal to show, if any. The grid's issues are listed from the
// page named by the query's page token.
func (c *Console) gridRender(q *request, code int, cats []gridOption, f gridRaiseForm, msg string) {
	resp, err := whistlev1.NewIntakeServiceClient(c.cfg.Conn).ListIssues(q.r.Context(),
		&whistlev1.ListIssuesRequest{PageSize: gridPageSize, PageToken: q.r.URL.Query().Get("page")}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	names := make(map[string]string, len(cats))
	for _, k := range cats {
		names[k.Value] = k.Name
	}
	v := gridView{CSRF: q.session.CSRF, Grid: q.session.Principal.Scope, Categories: cats, Form: f, Next: resp.GetNextPageToken(),
		MaxPhotos: gridMaxPhotos, MaxPhotoBytes: gridMaxPhotoBytes, MaxPhotoMB: gridMaxPhotoBytes >> 20, MaxText: gridMaxText}
	for _, u := range gridUrgencies {
		v.Urgencies = append(v.Urgencies, gridOption{u.value, q.lang.T("urgency." + u.value)})
	}
	for _, is := range resp.GetIssues() {
		v.Issues = append(v.Issues, c.gridRow(q, names, is))
	}
	v.Map = c.gridMap(q)
	c.render(q.w, code, "grid-worker.html", page{L: q.lang, Session: &q.session, Path: gridPath, Error: msg, Data: v})
}

// gridMap is the JSON block of the map of the worker's grid, drawn from its boundary with the
// city's tiles beneath when it has them, on which the raise form pins its point. The map is a
// help, not a need: when the areas cannot be read, or the grid has no boundary, the page goes
// without it and the place is taken from the location, or is the grid, as without script.
func (c *Console) gridMap(q *request) template.JS {
	grids, _, err := c.scopeGrids(q)
	if err == nil && len(grids) == 0 {
		return ""
	}
	var block template.JS
	if err == nil {
		block, err = mapBlock(mapData[mapArea]{Grids: grids, Tiles: c.cfg.MapTiles, Words: map[string]string{
			"zoom_in": q.lang.T("grid.map.zoom_in"), "zoom_out": q.lang.T("grid.map.zoom_out"),
			"pin": q.lang.T("grid.map.pin"), "pinned": q.lang.T("grid.map.pinned"),
			"outside": q.lang.T("grid.map.pinned_outside"),
		}})
	}
	if err != nil {
		c.cfg.Logger.Warn("console: the grid's map", "grid", q.session.Principal.Scope, "err", err)
		return ""
	}
	return block
}

// gridRow is an issue as the grid worker's list shows it.
func (c *Console) gridRow(q *request, names map[string]string, is *whistlev1.Issue) gridRow {
	return gridRow{issueRow: c.issueRow(q.lang, names, is), Urgency: gridUrgencyName(q.lang, is.GetUrgency()),
		Verify: gridCanVerify(is), Rate: gridCanRate(q, is), Mine: is.GetRaisedBy() == q.session.Principal.Subject}
}

// gridUrgencyName is an urgency in the person's language.
func gridUrgencyName(l lang, u whistlev1.Urgency) string {
	return l.T("urgency." + strings.ToLower(strings.TrimPrefix(u.String(), "URGENCY_")))
}

// gridCanVerify reports whether the issue waits for its grid's worker to check it on site.
func gridCanVerify(is *whistlev1.Issue) bool {
	return is.GetStatus() == whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED
}

// gridCanRate reports whether the person raised the issue and may rate it now: it is resolved or
// closed, and they have not rated it since it was last resolved (intake takes one rating per
// resolution).
func gridCanRate(q *request, is *whistlev1.Issue) bool {
	switch is.GetStatus() {
	case whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED, whistlev1.IssueStatus_ISSUE_STATUS_CLOSED:
	default:
		return false
	}
	if is.GetRaisedBy() != q.session.Principal.Subject {
		return false
	}
	r := is.GetRating()
	return r == nil || r.GetRatedAt().AsTime().Before(is.GetResolvedAt().AsTime())
}

// gridCategories are the categories a raise may name, in the catalog's order.
func (c *Console) gridCategories(q *request) ([]gridOption, error) {
	cats, err := c.categories(q)
	if err != nil {
		return nil, err
	}
	out := make([]gridOption, 0, len(cats))
	for _, k := range cats {
		out = append(out, gridOption{k.GetId(), k.GetName()})
	}
	return out, nil
}
