package console

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// The roles each page is for; staff is every person's role (an integrator is a system, not a
// person, and has no console).
var (
	staff    = []authx.Role{authx.RoleGridWorker, authx.RoleOfficer, authx.RoleDispatcher, authx.RoleSupervisor}
	officers = []authx.Role{authx.RoleOfficer}
)

// routes maps every page to its handler, each behind the roles it is for.
func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static") // the directory is embedded, so this cannot fail
	m.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /console/login", c.login)
	m.HandleFunc("GET /console/language", c.language)
	m.HandleFunc("POST /console/logout", c.signedIn(staff, c.logout))
	m.HandleFunc("GET /console/{$}", c.signedIn(staff, c.home))
	m.HandleFunc("GET /console/inbox", c.signedIn(officers, c.inbox))
	m.HandleFunc("GET /console/inbox/events", c.signedIn(officers, c.inboxEvents))
	m.HandleFunc("GET /console/issues/{id}", c.signedIn(staff, c.issue))
	m.HandleFunc("POST /console/issues/{id}/acknowledge", c.signedIn(officers, c.acknowledge))
	c.officerRoutes(m)
	c.gridWorkerRoutes(m)
	c.dispatcherRoutes(m)
	c.supervisorRoutes(m)
	c.mapRoutes(m)
	c.mux = m
}

// request is one call of a page by a signed-in person.
type request struct {
	w       http.ResponseWriter
	r       *http.Request
	session session
	lang    lang
}

// call is the option that sends the person's token with a call to the services.
func (q *request) call() grpc.CallOption {
	return grpc.PerRPCCredentials(authx.BearerToken(q.session.Token))
}

// page is what every template is given.
type page struct {
	L       lang
	Session *session // nil when nobody is signed in
	Path    string   // the page's own path, for the language switch to come back to
	Error   string   // what went wrong, for people
	Data    any
}

// signedIn serves h to a signed-in person whose role is one of roles; others get the sign-in or
// refusal page. A POST must carry the session's CSRF token.
func (c *Console) signedIn(roles []authx.Role, h func(*request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l := c.catalogs.languageOf(r)
		ss, ok, err := c.sessions.of(r)
		switch {
		case err != nil:
			c.fail(w, r, l, nil, err)
		case !ok:
			c.render(w, http.StatusUnauthorized, "signin.html", page{L: l, Path: r.URL.Path})
		case !slices.Contains(roles, ss.Principal.Role):
			c.render(w, http.StatusForbidden, "refused.html", page{L: l, Session: &ss, Path: r.URL.Path,
				Error: l.T("refused.role", l.T("role."+string(ss.Principal.Role)))})
		case r.Method == http.MethodPost && !readForm(w, r):
			c.render(w, http.StatusRequestEntityTooLarge, "refused.html", page{L: l, Session: &ss, Path: r.URL.Path,
				Error: l.T("refused.too_large", maxPhotoForm>>20)})
		case r.Method == http.MethodPost && !ss.checkCSRF(r):
			c.render(w, http.StatusForbidden, "refused.html", page{L: l, Session: &ss, Path: r.URL.Path, Error: l.T("refused.csrf")})
		default:
			h(&request{w: w, r: r, session: ss, lang: l})
		}
	}
}

// readForm reads a POST's form, bounded to maxPhotoForm (the largest a form with photos may be),
// before anything else reads it; false when the body is larger. Every form is read here, so that
// the CSRF check never reads an unbounded body.
func readForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxPhotoForm)
	err := r.ParseMultipartForm(32 << 20)
	if errors.Is(err, http.ErrNotMultipart) {
		err = r.ParseForm()
	}
	var tooLarge *http.MaxBytesError
	return !errors.As(err, &tooLarge)
}

// render writes a page, or a plain error when the template fails.
func (c *Console) render(w http.ResponseWriter, code int, name string, p page) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		c.cfg.Logger.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes()) // a failed write means the browser left
}

// fail answers a failure of a call: the service's refusal as a page that says it, anything else
// as an internal error that is logged.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, l lang, ss *session, err error) {
	code, msg, refused := refusal(l, err)
	if !refused {
		code, msg = http.StatusInternalServerError, l.T("error.internal")
		switch status.Code(err) {
		case codes.NotFound:
			code, msg = http.StatusNotFound, l.T("error.not_found")
		case codes.Unauthenticated:
			code, msg = http.StatusUnauthorized, l.T("error.session")
		}
	}
	if code == http.StatusInternalServerError {
		c.cfg.Logger.Error("console: a call failed", "path", r.URL.Path, "err", err)
	}
	c.render(w, code, "refused.html", page{L: l, Session: ss, Path: r.URL.Path, Error: msg})
}

// refusal is what a person is told of a call the services refused because of what they asked (a
// field found wrong, a role, scope or state that does not allow it, too many calls), with the
// status code of the page that tells it: a sentence in their language, then the service's own
// words, which name the field. ok is false for any other failure (the services unavailable, a
// session expired, an issue not found), which fail answers.
func refusal(l lang, err error) (code int, msg string, ok bool) {
	s, isStatus := status.FromError(err)
	if !isStatus {
		return 0, "", false
	}
	var key string
	switch s.Code() {
	case codes.InvalidArgument, codes.OutOfRange:
		code, key = http.StatusBadRequest, "error.invalid"
	case codes.PermissionDenied:
		code, key = http.StatusForbidden, "error.forbidden"
	case codes.FailedPrecondition, codes.Aborted, codes.AlreadyExists:
		code, key = http.StatusConflict, "error.conflict"
	case codes.ResourceExhausted:
		code, key = http.StatusTooManyRequests, "error.busy"
	default:
		return 0, "", false
	}
	return code, l.T(key, s.Message()), true
}

// login spends a sign-in link and starts the person's session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	l := c.catalogs.languageOf(r)
	ss, err := c.sessions.signIn(r.Context(), r.URL.Query().Get("link"))
	switch {
	case errors.Is(err, errLinkUsed):
		c.render(w, http.StatusForbidden, "signin.html", page{L: l, Error: l.T("signin.used")})
		return
	case errors.Is(err, errLinkInvalid):
		c.render(w, http.StatusForbidden, "signin.html", page{L: l, Error: l.T("signin.invalid")})
		return
	case err != nil:
		c.fail(w, r, l, nil, err)
		return
	}
	setCookie(w, r, ss)
	http.Redirect(w, r, Path, http.StatusSeeOther)
}

// logout ends the session.
func (c *Console) logout(q *request) {
	if err := c.sessions.end(q.r.Context(), q.session); err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	clearCookie(q.w, q.r)
	c.render(q.w, http.StatusOK, "signin.html", page{L: q.lang, Error: q.lang.T("signin.signed_out")})
}

// language keeps the language chosen and goes back to the page it was chosen on.
func (c *Console) language(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	if _, ok := c.catalogs[to]; ok {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: to, Path: Path, MaxAge: 365 * 24 * 3600,
			SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	}
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}

// localPath is back when it is a page of the console, else the console's home: a redirect never
// leaves the console.
func localPath(back string) string {
	if strings.HasPrefix(back, Path) && !strings.HasPrefix(back, "//") && !strings.Contains(back, "\\") {
		return back
	}
	return Path
}

// homes are the roles' first pages, under Path.
var homes = map[authx.Role]string{
	authx.RoleGridWorker: "grid",
	authx.RoleOfficer:    "inbox",
	authx.RoleDispatcher: "desk",
	authx.RoleSupervisor: "breaches",
}

// home sends each person to their role's first page.
func (c *Console) home(q *request) {
	http.Redirect(q.w, q.r, Path+homes[q.session.Principal.Role], http.StatusSeeOther)
}

// issueRow is an issue in a list.
type issueRow struct {
	ID, Category, Text, Status, Raised string
}

func (c *Console) issueRow(l lang, names map[string]string, is *whistlev1.Issue) issueRow {
	return issueRow{ID: is.GetId(), Category: nameOr(names, is.GetCategoryId()), Text: is.GetText(),
		Status: l.T("issue_status." + strings.ToLower(strings.TrimPrefix(is.GetStatus().String(), "ISSUE_STATUS_"))),
		Raised: c.when(is.GetRaisedAt().AsTime())}
}

// categoryTTL is how long the console keeps the catalog's categories before it reads them again:
// they are the same for every person and change only with the catalog, so a live page that renders
// every few seconds need not ask routing each time.
const categoryTTL = time.Minute

// categoryCache is the categories as routing last listed them.
type categoryCache struct {
	mu   sync.Mutex
	list []*whistlev1.Category
	read time.Time
}

// categories are the catalog's categories, in its order, read from routing at most once per
// categoryTTL.
func (c *Console) categories(q *request) ([]*whistlev1.Category, error) {
	c.cats.mu.Lock()
	list, fresh := c.cats.list, time.Since(c.cats.read) < categoryTTL
	c.cats.mu.Unlock()
	if list != nil && fresh {
		return list, nil
	}
	resp, err := whistlev1.NewRoutingServiceClient(c.cfg.Conn).ListCategories(q.r.Context(), &whistlev1.ListCategoriesRequest{}, q.call())
	if err != nil {
		return nil, err
	}
	c.cats.mu.Lock()
	c.cats.list, c.cats.read = resp.GetCategories(), time.Now()
	c.cats.mu.Unlock()
	return resp.GetCategories(), nil
}

// categoryNames are the categories' names by id; a failure to read them shows ids instead.
func (c *Console) categoryNames(q *request) map[string]string {
	names := map[string]string{}
	list, err := c.categories(q)
	if err != nil {
		c.cfg.Logger.Warn("console: categories", "err", err)
	}
	for _, k := range list {
		names[k.GetId()] = k.GetName()
	}
	return names
}

func nameOr(names map[string]string, id string) string {
	if n, ok := names[id]; ok {
		return n
	}
	return id
}

// when writes an instant in the city's time zone.
func (c *Console) when(t time.Time) string {
	if t.IsZero() || t.Unix() == 0 {
		return ""
	}
	return t.In(c.cfg.Zone).Format("2006-01-02 15:04")
}

// issue is an issue's page: where it stands, its parts, and its timeline as the stream recorded it.
func (c *Console) issue(q *request) {
	c.showIssue(q, http.StatusOK, "", nil)
}

// showIssue renders the issue's page, with msg as the error of a refused form whose values form
// holds (nil when none was refused).
func (c *Console) showIssue(q *request, code int, msg string, form url.Values) {
	resp, err := whistlev1.NewIntakeServiceClient(c.cfg.Conn).GetIssue(q.r.Context(), &whistlev1.GetIssueRequest{Id: q.r.PathValue("id")}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	v := c.issueView(q, resp.GetIssue(), resp.GetTimeline())
	if f := v.Unlink; f != nil && form != nil {
		f.Reason, f.Refused = form.Get("reason"), true
	}
	// The language switch comes back to the page, not to the form that was sent from it.
	back := Path + "issues/" + url.PathEscape(resp.GetIssue().GetId())
	c.render(q.w, code, "issue.html", page{L: q.lang, Session: &q.session, Path: back, Error: msg, Data: v})
}

// issueView is what the issue page shows.
type issueView struct {
	issueRow
	Urgency, Grid, Address string
	// ByAddress is true when the raiser gave the address alone, and the grid came from the
	// compound it names.
	ByAddress bool
	Parts     []inboxItem
	Timeline  []entryView
	// MyPart is the open part of the officer's own unit, which the page lets them act on; CSRF
	// and RequestID go into its forms.
	MyPart          *inboxItem
	CSRF, RequestID string
	// Supervises is true for a supervisor, whom the page sends on to urge and decide extensions.
	Supervises bool
	// LinkedTo is the case this issue joined as a duplicate; Unlink is the form that says it is
	// not one, for a person whose role may.
	LinkedTo string
	Unlink   *unlinkForm
	// Duplicates are the issues that joined this case, each with its unlink form.
	Duplicates []duplicateView
	// Unlinked is set on the page an unlink's form returns to.
	Unlinked bool
}

// duplicateView is a duplicate that joined the case, as the case's page lists it.
type duplicateView struct {
	ID     string
	Unlink *unlinkForm
}

// entryView is one timeline entry.
type entryView struct{ At, Actor, Summary string }

func (c *Console) issueView(q *request, is *whistlev1.Issue, timeline []*whistlev1.TimelineEntry) issueView {
	names := c.categoryNames(q)
	v := issueView{issueRow: c.issueRow(q.lang, names, is), Grid: is.GetGridId(), Address: is.GetLocation().GetAddress(),
		ByAddress:  is.GetLocation().GetPlacedByAddress(),
		Supervises: q.session.Principal.Role == authx.RoleSupervisor,
		Urgency:    q.lang.T("urgency." + strings.ToLower(strings.TrimPrefix(is.GetUrgency().String(), "URGENCY_")))}
	for _, a := range is.GetAssignments() {
		part := c.inboxItem(q, names, &whistlev1.InboxItem{IssueId: is.GetId(), CategoryId: is.GetCategoryId(),
			Urgency: is.GetUrgency(), Text: is.GetText(), Assignment: a})
		v.Parts = append(v.Parts, part)
		open := a.GetStatus() == whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED || a.GetStatus() == whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED
		if q.session.Principal.Role == authx.RoleOfficer && part.Unit == q.session.Principal.Scope && open {
			v.MyPart, v.CSRF, v.RequestID = &part, q.session.CSRF, newRequestID()
		}
	}
	for _, e := range timeline {
		v.Timeline = append(v.Timeline, entryView{At: c.when(e.GetAt().AsTime()), Actor: e.GetActor(), Summary: e.GetSummary()})
	}
	unlinks := slices.Contains(unlinkers, q.session.Principal.Role)
	if v.LinkedTo = is.GetLinkedTo(); v.LinkedTo != "" && unlinks {
		v.Unlink = &unlinkForm{L: q.lang, Issue: is.GetId(), CSRF: q.session.CSRF}
	}
	for _, d := range is.GetDuplicates() {
		dv := duplicateView{ID: d}
		if unlinks {
			dv.Unlink = &unlinkForm{L: q.lang, Issue: d, CSRF: q.session.CSRF}
		}
		v.Duplicates = append(v.Duplicates, dv)
	}
	// A bare link cannot make a linked issue's page say it is unlinked.
	v.Unlinked = q.r.URL.Query().Get("done") == "unlinked" && v.LinkedTo == ""
	return v
}

// acknowledge is the duty officer's report-in on an assignment of their unit.
func (c *Console) acknowledge(q *request) {
	id := q.r.PathValue("id")
	_, err := whistlev1.NewDepartmentServiceClient(c.cfg.Conn).Acknowledge(q.r.Context(),
		&whistlev1.AcknowledgeRequest{IssueId: id, UnitId: q.session.Principal.Scope}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	http.Redirect(q.w, q.r, localPath(q.r.PostFormValue("back")), http.StatusSeeOther)
}
