package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// dispatchers are the people of the dispatch desk.
var dispatchers = []authx.Role{authx.RoleDispatcher}

// unlinkers are the roles routing lets unlink a duplicate: those it lets work the desk.
var unlinkers = []authx.Role{authx.RoleDispatcher, authx.RoleSupervisor}

// issueWait bounds how long the answer to a form waits for intake's view to show what the form did.
const issueWait = 5 * time.Second

// deskRefresh is how often the desk's list reads itself again: routing offers no watch of the
// desk, and an issue waits there for hours, not seconds.
const deskRefresh = 10 * time.Second

// dispatcherRoutes adds the dispatcher's pages.
func (c *Console) dispatcherRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /console/desk", c.signedIn(dispatchers, c.desk))
	m.HandleFunc("GET /console/desk/list", c.signedIn(dispatchers, c.deskList))
	m.HandleFunc("POST /console/desk/{id}/dispatch", c.signedIn(dispatchers, c.dispatch))
	m.HandleFunc("POST /console/desk/{id}/category", c.signedIn(dispatchers, c.changeCategory))
	m.HandleFunc("POST /console/issues/{id}/unlink", c.signedIn(unlinkers, c.unlink))
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
	cats, err := c.categories(q)
	if err != nil {
		return deskPage{}, err
	}
	names := map[string]string{}
	for _, k := range cats {
		names[k.GetId()] = k.GetName()
	}
	p := deskPage{Departments: depts.GetDepartments(), Categories: cats, CSRF: q.session.CSRF}
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

// unlinkForm is the form that unlinks a duplicate from the case it joined.
type unlinkForm struct {
	L           lang
	Issue, CSRF string
	Reason      string // as sent, when the form was refused
	Refused     bool
}

// unlink says a duplicate is not one: routing records it and routes the issue as a case of its
// own. Routing refuses a second unlink as not linked, so a form sent twice finds the issue already
// unlinked and gets the first one's answer; it unlinks once.
func (c *Console) unlink(q *request) {
	id := q.r.PathValue("id")
	reason := strings.TrimSpace(q.r.PostFormValue("reason"))
	if reason == "" || utf8.RuneCountInString(reason) > maxText {
		c.showIssue(q, http.StatusBadRequest, q.lang.T("unlink.reason_required", maxText), q.r.PostForm)
		return
	}
	_, err := whistlev1.NewRoutingServiceClient(c.cfg.Conn).UnlinkIssue(q.r.Context(),
		&whistlev1.UnlinkIssueRequest{IssueId: id, Reason: reason}, q.call())
	switch s, _ := status.FromError(err); {
	case err == nil:
	case s.Code() == codes.FailedPrecondition && c.unlinkedBefore(q, id):
	case s.Code() == codes.FailedPrecondition:
		c.showIssue(q, http.StatusConflict, q.lang.T("unlink.not_linked"), nil)
		return
	case s.Code() == codes.InvalidArgument:
		c.showIssue(q, http.StatusBadRequest, q.lang.T("error.invalid", s.Message()), q.r.PostForm)
		return
	default:
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	// Routing answers once its own view holds the unlinking; the page reads intake's.
	if !c.awaitIssue(q, id, notLinked) {
		c.cfg.Logger.Warn("console: the issue's page may not show the unlink yet", "issue", id)
	}
	http.Redirect(q.w, q.r, Path+"issues/"+url.PathEscape(id)+"?done=unlinked", http.StatusSeeOther)
}

// notLinked is true of an issue that is a case of its own.
func notLinked(is *whistlev1.Issue) bool { return is.GetLinkedTo() == "" }

// unlinkedBefore reports whether an issue that routing finds not linked was unlinked: the last of
// its links in the timeline is an unlinking. Intake's view may not hold that unlinking yet when a
// form is sent twice in quick succession, so it is waited for.
func (c *Console) unlinkedBefore(q *request, id string) bool {
	if !c.awaitIssue(q, id, notLinked) {
		return false
	}
	resp, err := whistlev1.NewIntakeServiceClient(c.cfg.Conn).GetIssue(q.r.Context(), &whistlev1.GetIssueRequest{Id: id}, q.call())
	if err != nil || !notLinked(resp.GetIssue()) {
		return false
	}
	last := ""
	for _, e := range resp.GetTimeline() {
		if k := e.GetKind(); k == "linked" || k == "unlinked" {
			last = k
		}
	}
	return last == "unlinked"
}

// awaitIssue waits, for at most issueWait, until intake's view of the issue satisfies done, and
// reports whether it did.
func (c *Console) awaitIssue(q *request, id string, done func(*whistlev1.Issue) bool) bool {
	ctx, cancel := context.WithTimeout(q.r.Context(), issueWait)
	defer cancel()
	watch, err := whistlev1.NewIntakeServiceClient(c.cfg.Conn).WatchIssue(ctx, &whistlev1.WatchIssueRequest{Id: id}, q.call())
	if err != nil {
		return false
	}
	for {
		resp, err := watch.Recv()
		if err != nil {
			return false
		}
		if done(resp.GetIssue()) {
			return true
		}
	}
}
