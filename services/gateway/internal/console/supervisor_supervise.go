package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// supervisePage is what the supervise page's template is given: an issue's parts, each with the
// supervisor's forms.
type supervisePage struct {
	Nav   supervisorNav
	Issue issueRow
	Place string
	Parts []svPartView
	// Done says what the supervisor just did, as the form's answer redirected here.
	Done string
	CSRF string
}

// svPartView is one unit's part of an issue as the supervisor sees it, with what they may do.
type svPartView struct {
	Anchor, Unit, UnitName, Role, Status string
	ReportInBy, ResolveBy, Officer       string
	Breached                             []string
	Level                                string
	Urges                                int32
	// Open parts may be urged; UrgeID keys the urge form, so that a form sent twice urges once.
	Open   bool
	UrgeID string
	// Note is what a refused urge of this part said, to be sent again.
	Note      string
	Extension *svExtensionView
	Decision  string // the latest decision on an extension, as people read it
}

// svExtensionView is a unit's pending extension request, with the forms that decide it.
type svExtensionView struct {
	Kind, Current, Proposed, Reason, RequestedBy, RequestedAt string
	// Granted is the approval form's deadline (a datetime-local value): the one proposed, or the
	// one a refused approval asked for. Asked is the one proposed, to the minute: an approval
	// that keeps it grants the proposal itself, to the second.
	Granted, Asked string
	// DenyReason is what a refused denial said.
	DenyReason             string
	ApproveID, DenyID      string
	ApproveLate            bool   // the deadline it would move has passed: an approval will be refused
	ApproveMin, ApproveMax string // the earliest and latest deadline an approval may grant
}

// svDoneKeys are the answers a form may redirect with, by the catalog's key: only these, so that a
// link cannot make the page say anything else.
var svDoneKeys = map[string]string{
	"urged":    "supervisor.done.urged",
	"approved": "supervisor.done.approved",
	"denied":   "supervisor.done.denied",
}

// svSupervise is an issue's page for a supervisor: each unit's part, its clocks, breaches, urges and
// pending extension request, with the forms to urge it and to decide the request.
func (c *Console) svSupervise(q *request) {
	c.showSupervise(q, http.StatusOK, "", nil)
}

// showSupervise renders the supervise page, with msg as the error of a refused form whose values
// form holds (nil when none was refused).
func (c *Console) showSupervise(q *request, code int, msg string, form url.Values) {
	resp, err := whistlev1.NewIntakeServiceClient(c.cfg.Conn).GetIssue(q.r.Context(), &whistlev1.GetIssueRequest{Id: q.r.PathValue("id")}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	is := resp.GetIssue()
	d := c.svDirectory(q)
	p := supervisePage{Nav: q.svNav(""), Issue: c.issueRow(q.lang, d.categories, is), Place: d.place(is.GetStreetId(), is.GetGridId()),
		CSRF: q.session.CSRF}
	if key, ok := svDoneKeys[q.r.URL.Query().Get("done")]; ok && form == nil {
		p.Done = q.lang.T(key)
	}
	for _, a := range is.GetAssignments() {
		p.Parts = append(p.Parts, c.svPart(q, d, a, form))
	}
	// The language switch comes back to the page, not to the form that was sent from it.
	back := "/console/issues/" + url.PathEscape(is.GetId()) + "/supervise"
	c.render(q.w, code, "supervisor-supervise.html", page{L: q.lang, Session: &q.session, Path: back, Error: msg, Data: p})
}

// svPart is a part as the supervise page shows it; form, when a form of this part was refused,
// gives back what it said.
func (c *Console) svPart(q *request, d svDirectory, a *whistlev1.Assignment, form url.Values) svPartView {
	l := q.lang
	unit := svUnitOf(a)
	st := strings.ToLower(strings.TrimPrefix(a.GetStatus().String(), "ASSIGNMENT_STATUS_"))
	v := svPartView{Anchor: "part-" + unit, Unit: unit, UnitName: d.unit(a.GetDepartmentId(), unit),
		Role:   l.T("supervisor.role." + strings.ToLower(strings.TrimPrefix(a.GetRole().String(), "ASSIGNMENT_ROLE_"))),
		Status: l.T("assignment_status." + st), ReportInBy: c.when(a.GetReportInBy().AsTime()), ResolveBy: c.when(a.GetResolveBy().AsTime()),
		Officer: a.GetOfficerId(), Urges: a.GetUrges(), Level: l.T("supervisor.level.none"), UrgeID: svRequestID(),
		Open: a.GetStatus() == whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_DISPATCHED || a.GetStatus() == whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_ACKNOWLEDGED}
	if a.GetEscalationLevel() > 0 {
		v.Level = l.T("supervisor.level.n", a.GetEscalationLevel())
	}
	for _, k := range a.GetBreached() {
		v.Breached = append(v.Breached, svDeadlineKind(l, k))
	}
	mine := form != nil && form.Get("unit") == unit
	if mine && form.Get("note") != "" {
		v.Note = form.Get("note")
	}
	if x := a.GetExtensionDecided(); x != nil {
		if x.GetApproved() {
			v.Decision = l.T("supervisor.decision.approved", svDeadlineKind(l, x.GetKind()), c.when(x.GetGranted().AsTime()), x.GetDecidedBy(), c.when(x.GetDecidedAt().AsTime()))
		} else {
			v.Decision = l.T("supervisor.decision.denied", svDeadlineKind(l, x.GetKind()), x.GetReason(), x.GetDecidedBy(), c.when(x.GetDecidedAt().AsTime()))
		}
	}
	if e := a.GetExtensionRequested(); e != nil {
		current := a.GetResolveBy().AsTime()
		if e.GetKind() == whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN {
			current = a.GetReportInBy().AsTime()
		}
		v.Extension = &svExtensionView{Kind: svDeadlineKind(l, e.GetKind()), Current: c.when(current), Proposed: c.when(e.GetProposed().AsTime()),
			Reason: e.GetReason(), RequestedBy: e.GetRequestedBy(), RequestedAt: c.when(e.GetRequestedAt().AsTime()),
			Granted: c.svMinute(e.GetProposed().AsTime()), Asked: c.svMinute(e.GetProposed().AsTime()), ApproveID: svRequestID(), DenyID: svRequestID(),
			ApproveLate: !c.cfg.Now().Before(current) || !v.Open || slices.Contains(a.GetBreached(), e.GetKind()),
			ApproveMin:  c.svMinute(current.Add(time.Minute)), ApproveMax: c.svMinute(current.Add(svMaxExtension))}
		if mine {
			if g := form.Get("granted"); g != "" {
				v.Extension.Granted = g
			}
			if form.Get("decision") == "deny" {
				v.Extension.DenyReason = form.Get("reason")
			}
		}
	}
	return v
}

// svMaxExtension is how far past the current deadline an approval may grant, as the API bounds it.
const svMaxExtension = 30 * 24 * time.Hour

// svMinute writes an instant as a datetime-local input takes it, in the city's time zone.
func (c *Console) svMinute(t time.Time) string { return t.In(c.cfg.Zone).Format(svMinuteLayout) }

// svUrge is the supervisor's urge (督办) of a part of an issue, with a note.
func (c *Console) svUrge(q *request) {
	id := q.r.PathValue("id")
	unit := strings.TrimSpace(q.r.PostFormValue("unit"))
	note, msg := svText(q.lang, q.r.PostFormValue("note"), "supervisor.field.note", svMaxNote, true)
	switch {
	case msg != "":
	case unit == "" || !svCheckID(unit):
		msg = q.lang.T("supervisor.invalid.choice", q.lang.T("supervisor.field.unit"))
	case !svCheckRequestID(q.r.PostFormValue("request_id")):
		msg = q.lang.T("refused.csrf") // the form's key was lost or changed: a fresh form has one
	}
	if msg != "" {
		c.showSupervise(q, http.StatusBadRequest, msg, q.r.PostForm)
		return
	}
	_, err := whistlev1.NewEscalationServiceClient(c.cfg.Conn).Urge(q.r.Context(), &whistlev1.UrgeRequest{IssueId: id, UnitId: unit,
		Note: note, RequestId: q.r.PostFormValue("request_id")}, q.call())
	c.svAnswer(q, err, "urged", unit)
}

// svDecideExtension approves or denies a unit's pending extension request.
func (c *Console) svDecideExtension(q *request) {
	id, l := q.r.PathValue("id"), q.lang
	unit := strings.TrimSpace(q.r.PostFormValue("unit"))
	approve := q.r.PostFormValue("decision") == "approve"
	req := &whistlev1.DecideExtensionRequest{IssueId: id, UnitId: unit, Approve: approve, RequestId: q.r.PostFormValue("request_id")}
	var msg string
	switch {
	case unit == "" || !svCheckID(unit):
		msg = l.T("supervisor.invalid.choice", l.T("supervisor.field.unit"))
	case !approve && q.r.PostFormValue("decision") != "deny":
		msg = l.T("supervisor.invalid.choice", l.T("supervisor.field.decision"))
	case !svCheckRequestID(req.RequestId):
		msg = l.T("refused.csrf")
	case approve:
		// A deadline left as proposed is sent as none, which grants the proposal to the second.
		if g := strings.TrimSpace(q.r.PostFormValue("granted")); g != "" && g != q.r.PostFormValue("asked") {
			t, err := time.ParseInLocation(svMinuteLayout, g, c.cfg.Zone)
			if err != nil {
				msg = l.T("supervisor.invalid.minute", l.T("supervisor.field.granted"))
				break
			}
			req.Granted = timestamppb.New(t)
		}
		req.Reason, msg = svText(l, q.r.PostFormValue("reason"), "supervisor.field.reason", svMaxReason, false)
	default:
		req.Reason, msg = svText(l, q.r.PostFormValue("reason"), "supervisor.field.deny_reason", svMaxReason, true)
	}
	if msg != "" {
		c.showSupervise(q, http.StatusBadRequest, msg, q.r.PostForm)
		return
	}
	_, err := whistlev1.NewEscalationServiceClient(c.cfg.Conn).DecideExtension(q.r.Context(), req, q.call())
	done := "denied"
	if approve {
		done = "approved"
	}
	c.svAnswer(q, err, done, unit)
}

// svAnswer ends a supervisor's form: back to the part on the supervise page, saying what was done;
// a refusal of what the form asked is shown on that page with the form as it was sent.
func (c *Console) svAnswer(q *request, err error, done, unit string) {
	if err != nil {
		if code, msg, ok := refusal(q.lang, err); ok {
			c.showSupervise(q, code, msg, q.r.PostForm)
			return
		}
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	to := url.URL{Path: "/console/issues/" + q.r.PathValue("id") + "/supervise", RawQuery: "done=" + done, Fragment: "part-" + unit}
	http.Redirect(q.w, q.r, to.String(), http.StatusSeeOther)
}

// svExtensionsPage is what the pending extension requests' template is given.
type svExtensionsPage struct {
	Nav  supervisorNav
	Rows []svExtensionRow
	// Later is the next page's address; empty on the last.
	Later string
}

// svExtensionRow is one pending request, leading to the part's supervise page.
type svExtensionRow struct {
	IssueID, Category, Place, Unit, Anchor     string
	Kind, Current, Proposed, Reason, Requested string
}

// svExtensionsPageSize is how many requests the page shows at once.
const svExtensionsPageSize = 50

// svExtensions lists the extension requests waiting for a decision in the supervisor's scope,
// oldest request first (it has waited longest, and its deadline is likely the nearest), each
// leading to its part's supervise page, a page at a time.
func (c *Console) svExtensions(q *request) {
	p := svExtensionsPage{Nav: q.svNav("extensions")}
	token := q.r.URL.Query().Get("page")
	if len(token) > 1024 { // a page token is short; a longer one was not given by the page
		c.render(q.w, http.StatusBadRequest, "supervisor-extensions.html", page{L: q.lang, Session: &q.session, Path: q.r.URL.Path,
			Error: q.lang.T("supervisor.invalid.page"), Data: p})
		return
	}
	resp, err := whistlev1.NewEscalationServiceClient(c.cfg.Conn).ListExtensionRequests(q.r.Context(),
		&whistlev1.ListExtensionRequestsRequest{PageSize: svExtensionsPageSize, PageToken: token}, q.call())
	if err != nil {
		if code, msg, ok := refusal(q.lang, err); ok {
			c.render(q.w, code, "supervisor-extensions.html", page{L: q.lang, Session: &q.session, Path: q.r.URL.Path, Error: msg, Data: p})
			return
		}
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	d := c.svDirectory(q)
	for _, x := range resp.GetRequests() {
		p.Rows = append(p.Rows, svExtensionRow{IssueID: x.GetIssueId(), Category: nameOr(d.categories, x.GetCategoryId()),
			Place: d.place(x.GetStreetId(), x.GetGridId()), Unit: d.unit(x.GetDepartmentId(), x.GetUnitId()), Anchor: "part-" + x.GetUnitId(),
			Kind: svDeadlineKind(q.lang, x.GetKind()), Current: c.when(x.GetDeadline().AsTime()), Proposed: c.when(x.GetProposed().AsTime()),
			Reason: x.GetReason(), Requested: q.lang.T("supervisor.extension.requested", x.GetRequestedBy(), c.when(x.GetRequestedAt().AsTime()))})
	}
	if next := resp.GetNextPageToken(); next != "" {
		p.Later = "/console/extensions?" + url.Values{"page": {next}}.Encode()
	}
	c.render(q.w, http.StatusOK, "supervisor-extensions.html", page{L: q.lang, Session: &q.session, Path: q.r.URL.Path, Data: p})
}
