package console

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// dispatchers are the people of the dispatch desk.
var dispatchers = []authx.Role{authx.RoleDispatcher}

// deskRefresh is how often the desk's list reads itself again: routing offers no watch of the
// desk, and an issue waits there for hours, not seconds.
const deskRefresh = 10 * time.Second

// dispatcherRoutes adds the dispatcher's pages.
func (c *Console) dispatcherRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /console/desk", c.signedIn(dispatchers, c.desk))
	m.HandleFunc("GET /console/desk/list", c.signedIn(dispatchers, c.deskList))
	m.HandleFunc("POST /console/desk/{id}/dispatch", c.signedIn(dispatchers, c.dispatch))
	m.HandleFunc("POST /console/desk/{id}/category", c.signedIn(dispatchers, c.changeCategory))
}

// deskPage is what the desk's template is given.
type deskPage struct {
	Items       []deskItem
	Departments []*whistlev1.Department
	Categories  []*whistlev1.Category
	CSRF        string
}

// deskItem is an issue waiting at the desk, with how long it may still wait.
type deskItem struct {
	IssueID, Category, CategoryID, Grid, Reason, Waiting, DispatchBy, Left string
	Overdue                                                                bool
	ReturnedBy                                                             string
}

// desk is the queue of what no rule could route, oldest first, with a form to dispatch each.
func (c *Console) desk(q *request) {
	p, err := c.deskPage(q)
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	c.render(q.w, http.StatusOK, "desk.html", page{L: q.lang, Session: &q.session, Path: q.r.URL.Path, Data: p})
}

// deskList is the desk's list alone, which the page reads again every deskRefresh.
func (c *Console) deskList(q *request) {
	p, err := c.deskPage(q)
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	if err := c.pages["desk.html"].ExecuteTemplate(q.w, "desk-list", page{L: q.lang, Session: &q.session, Data: p}); err != nil {
		c.cfg.Logger.Error("console: render the desk", "err", err)
	}
}

func (c *Console) deskPage(q *request) (deskPage, error) {
	ctx := q.r.Context()
	routing := whistlev1.NewRoutingServiceClient(c.cfg.Conn)
	resp, err := routing.ListDesk(ctx, &whistlev1.ListDeskRequest{PageSize: 200}, q.call())
	if err != nil {
		return deskPage{}, err
	}
	depts, err := routing.ListDepartments(ctx, &whistlev1.ListDepartmentsRequest{}, q.call())
	if err != nil {
		return deskPage{}, err
	}
	cats, err := routing.ListCategories(ctx, &whistlev1.ListCategoriesRequest{}, q.call())
	if err != nil {
		return deskPage{}, err
	}
	names := map[string]string{}
	for _, k := range cats.GetCategories() {
		names[k.GetId()] = k.GetName()
	}
	p := deskPage{Departments: depts.GetDepartments(), Categories: cats.GetCategories(), CSRF: q.session.CSRF}
	for _, it := range resp.GetItems() {
		d := deskItem{IssueID: it.GetIssueId(), Category: nameOr(names, it.GetCategoryId()), CategoryID: it.GetCategoryId(),
			Grid: it.GetGridId(), Reason: it.GetReason(), Waiting: c.when(it.GetWaitingSince().AsTime()),
			ReturnedBy: strings.Join(it.GetReturnedBy(), ", ")}
		if by := it.GetDispatchBy(); by != nil {
			d.DispatchBy = c.when(by.AsTime())
			left := by.AsTime().Sub(c.cfg.Now()).Truncate(time.Minute)
			if d.Overdue = left < 0; d.Overdue {
				d.Left = q.lang.T("time.overdue", duration(q.lang, -left))
			} else {
				d.Left = q.lang.T("time.left", duration(q.lang, left))
			}
		}
		p.Items = append(p.Items, d)
	}
	return p, nil
}

// dispatch summons a lead and any assisting departments to an issue at the desk.
func (c *Console) dispatch(q *request) {
	lead := strings.TrimSpace(q.r.PostFormValue("lead"))
	note := strings.TrimSpace(q.r.PostFormValue("note"))
	var assisting []string
	for _, a := range q.r.PostForm["assisting"] {
		if a != "" && a != lead {
			assisting = append(assisting, a)
		}
	}
	switch {
	case lead == "":
		c.deskRefusal(q, q.lang.T("desk.lead_required"))
		return
	case utf8.RuneCountInString(note) > maxText:
		c.deskRefusal(q, q.lang.T("desk.note_too_long", maxText))
		return
	}
	_, err := whistlev1.NewRoutingServiceClient(c.cfg.Conn).DispatchIssue(q.r.Context(), &whistlev1.DispatchIssueRequest{
		IssueId: q.r.PathValue("id"), Lead: lead, Assisting: assisting, Note: note}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	http.Redirect(q.w, q.r, Path+"issues/"+q.r.PathValue("id"), http.StatusSeeOther)
}

// changeCategory puts an issue at the desk in another category, which routing then routes.
func (c *Console) changeCategory(q *request) {
	category := strings.TrimSpace(q.r.PostFormValue("category"))
	reason := strings.TrimSpace(q.r.PostFormValue("reason"))
	switch {
	case category == "":
		c.deskRefusal(q, q.lang.T("desk.category_required"))
		return
	case reason == "" || utf8.RuneCountInString(reason) > maxText:
		c.deskRefusal(q, q.lang.T("desk.reason_required", maxText))
		return
	}
	_, err := whistlev1.NewRoutingServiceClient(c.cfg.Conn).ChangeCategory(q.r.Context(), &whistlev1.ChangeCategoryRequest{
		IssueId: q.r.PathValue("id"), CategoryId: category, Reason: reason}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	http.Redirect(q.w, q.r, Path+"issues/"+q.r.PathValue("id"), http.StatusSeeOther)
}

// deskRefusal shows the desk again with what was wrong with a form.
func (c *Console) deskRefusal(q *request, msg string) {
	p, err := c.deskPage(q)
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	c.render(q.w, http.StatusBadRequest, "desk.html", page{L: q.lang, Session: &q.session, Path: Path + "desk", Error: msg, Data: p})
}
