package console

import (
	"crypto/rand"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// officerRoutes adds the duty officer's actions on an assignment of their unit, beside the inbox
// and acknowledge (pages.go).
func (c *Console) officerRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /console/issues/{id}/resolve", c.signedIn(officers, c.resolve))
	m.HandleFunc("POST /console/issues/{id}/return", c.signedIn(officers, c.returnAssignment))
	m.HandleFunc("POST /console/issues/{id}/extension", c.signedIn(officers, c.askExtension))
	m.HandleFunc("POST /console/issues/{id}/note", c.signedIn(officers, c.addNote))
}

// maxText bounds a note, a reason or a resolution as the department's API does.
const maxText = 500

// text is a form's field trimmed, or a refusal naming it when it is required and empty or too long.
func (q *request) text(field string, required bool) (string, bool) {
	v := strings.TrimSpace(q.r.PostFormValue(field))
	if (required && v == "") || utf8.RuneCountInString(v) > maxText || !utf8.ValidString(v) {
		return "", false
	}
	return v, true
}

// afterAction goes back to the issue's page once an action is recorded.
func afterAction(q *request) {
	http.Redirect(q.w, q.r, Path+"issues/"+q.r.PathValue("id"), http.StatusSeeOther)
}

// resolve records the unit's part as done, with a note and photos from the site.
func (c *Console) resolve(q *request) {
	if q.r.MultipartForm == nil { // signedIn read the form; a resolve's is multipart, for its photos
		c.refuse(q, q.lang.T("officer.form_unreadable"))
		return
	}
	note, ok := q.text("note", true)
	if !ok {
		c.refuse(q, q.lang.T("officer.note_required", maxText))
		return
	}
	files := q.r.MultipartForm.File["photos"]
	if len(files) > evidence.MaxPhotosPerResolve {
		c.refuse(q, q.lang.T("officer.too_many_photos", evidence.MaxPhotosPerResolve))
		return
	}
	id := q.r.PathValue("id")
	photos, err := c.uploadPhotos(q, "", id, files)
	if err == nil {
		_, err = whistlev1.NewDepartmentServiceClient(c.cfg.Conn).Resolve(q.r.Context(), &whistlev1.ResolveRequest{
			IssueId: id, UnitId: q.session.Principal.Scope, Note: note, PhotoIds: photos}, q.call())
	}
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	afterAction(q)
}

// returnAssignment sends the issue back to routing: it is not the unit's, for a reason.
func (c *Console) returnAssignment(q *request) {
	reason, ok := q.text("reason", true)
	if !ok {
		c.refuse(q, q.lang.T("officer.reason_required", maxText))
		return
	}
	_, err := whistlev1.NewDepartmentServiceClient(c.cfg.Conn).ReturnAssignment(q.r.Context(), &whistlev1.ReturnAssignmentRequest{
		IssueId: q.r.PathValue("id"), UnitId: q.session.Principal.Scope, Reason: reason}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	afterAction(q)
}

// askExtension asks a supervisor for more time on one of the part's deadlines.
func (c *Console) askExtension(q *request) {
	reason, ok := q.text("reason", true)
	if !ok {
		c.refuse(q, q.lang.T("officer.reason_required", maxText))
		return
	}
	kind := whistlev1.DeadlineKind_DEADLINE_KIND_RESOLVE
	if q.r.PostFormValue("kind") == "report_in" {
		kind = whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN
	}
	// A datetime-local field has no zone: it is the city's time, as every time the console shows.
	until, err := time.ParseInLocation("2006-01-02T15:04", q.r.PostFormValue("until"), c.cfg.Zone)
	if err != nil {
		c.refuse(q, q.lang.T("officer.until_required"))
		return
	}
	_, err = whistlev1.NewDepartmentServiceClient(c.cfg.Conn).RequestExtension(q.r.Context(), &whistlev1.RequestExtensionRequest{
		IssueId: q.r.PathValue("id"), UnitId: q.session.Principal.Scope, Kind: kind, Proposed: timestamppb.New(until), Reason: reason}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	afterAction(q)
}

// addNote adds a note to the part's record. The form carries a request id made when it was
// shown, so a double submit adds the note once.
func (c *Console) addNote(q *request) {
	note, ok := q.text("note", true)
	if !ok {
		c.refuse(q, q.lang.T("officer.note_required", maxText))
		return
	}
	_, err := whistlev1.NewDepartmentServiceClient(c.cfg.Conn).AddNote(q.r.Context(), &whistlev1.AddNoteRequest{
		IssueId: q.r.PathValue("id"), UnitId: q.session.Principal.Scope, Note: note, RequestId: q.r.PostFormValue("request_id")}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	afterAction(q)
}

// refuse answers a form that cannot be sent as it is, saying what is wrong, and writes nothing.
func (c *Console) refuse(q *request, msg string) {
	c.render(q.w, http.StatusBadRequest, "refused.html", page{L: q.lang, Session: &q.session, Path: q.r.URL.Path, Error: msg})
}

// newRequestID is the idempotency key a form carries, made when the form is shown.
func newRequestID() string { return "console-" + rand.Text() }
