package console

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// gridMaxReopeningScore is the highest score with which a rating may reopen an issue, as intake
// allows it.
const gridMaxReopeningScore = 2

// gridIssueView is what a grid issue's page shows: the issue, what each unit did, and the forms
// to verify it on site and to rate it, when the grid worker may.
type gridIssueView struct {
	issueRow
	// CSRF is the session's token, which every form carries back.
	CSRF string
	// Urgency, Grid, Compound and Point say how urgent it is and where (the point as
	// "latitude, longitude", empty when the raise gave none).
	Urgency, Grid, Compound, Point string
	// ClosesBy is when it closes by itself while it waits for verification.
	ClosesBy string
	// Photos are those raised with it.
	Photos []gridPhotoLink
	// Parts are the units summoned, with what each did.
	Parts []gridPart
	// Verification and Rating are the last of each, if any.
	Verification *gridVerdict
	Rating       *gridRated
	// CanVerify and CanRate say which forms the grid worker may use now.
	CanVerify, CanRate bool
	// Verify and Rate are the forms, fresh or as sent.
	Verify gridVerifyForm
	Rate   gridRateForm
	// Scores are the rating's choices, best first.
	Scores []gridOption
	// The limits the forms show.
	MaxRemark, MaxReopeningScore int
}

// gridPhotoLink is a photo of the issue as an image on the page.
type gridPhotoLink struct{ URL, Alt string }

// gridPart is one unit's part of the issue: where it stands and what it reported.
type gridPart struct {
	Unit, Role, Status, Resolved, ResolvedBy, Note string
	Photos                                         []gridPhotoLink
}

// gridVerdict is the last check on site.
type gridVerdict struct {
	Passed         bool
	By, At, Reason string
}

// gridRated is the raiser's last rating.
type gridRated struct {
	Score           int32
	Comment, By, At string
	Reopened        bool
}

// gridVerifyForm is a verification as it was sent: pass or fail, and the reason.
type gridVerifyForm struct {
	Result, Reason string
	Errors         gridErrors
}

// gridRateForm is a rating as it was sent.
type gridRateForm struct {
	Score, Comment string
	Reopen         bool
	Errors         gridErrors
}

// gridIssue is a grid issue's page, with the forms the grid worker may use on it.
func (c *Console) gridIssue(q *request) {
	c.gridRenderIssue(q, http.StatusOK, gridVerifyForm{}, gridRateForm{}, "")
}

// gridRenderIssue writes the page of the issue the path names, with the verification and rating
// forms as given (fresh, or as sent with what is wrong) and msg, the refusal to show, if any.
func (c *Console) gridRenderIssue(q *request, code int, vf gridVerifyForm, rf gridRateForm, msg string) {
	id := q.r.PathValue("id")
	resp, err := whistlev1.NewIntakeServiceClient(c.cfg.Conn).GetIssue(q.r.Context(), &whistlev1.GetIssueRequest{Id: id}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	is := resp.GetIssue()
	l := q.lang
	v := gridIssueView{issueRow: c.issueRow(l, c.categoryNames(q), is), CSRF: q.session.CSRF,
		Urgency: gridUrgencyName(l, is.GetUrgency()), Grid: is.GetGridId(), Compound: is.GetCompoundId(),
		CanVerify: gridCanVerify(is), CanRate: gridCanRate(q, is), Verify: vf, Rate: rf,
		MaxRemark: gridMaxRemark, MaxReopeningScore: gridMaxReopeningScore}
	if loc := is.GetLocation(); loc != nil && (loc.GetLatitude() != 0 || loc.GetLongitude() != 0) {
		v.Point = fmt.Sprintf("%.6f, %.6f", loc.GetLatitude(), loc.GetLongitude())
	}
	if v.CanVerify {
		v.ClosesBy = c.when(is.GetClosesBy().AsTime())
	}
	for i, ph := range is.GetPhotos() {
		v.Photos = append(v.Photos, gridPhotoLink{gridPhotoURL(is.GetId(), ph.GetId()), l.T("grid.photo.raised", i+1)})
	}
	for _, a := range is.GetAssignments() {
		p := gridPart{Unit: a.GetUnitId(), Note: a.GetResolutionNote(), ResolvedBy: a.GetResolvedBy(),
			Role:   l.T("grid.part." + strings.ToLower(strings.TrimPrefix(a.GetRole().String(), "ASSIGNMENT_ROLE_"))),
			Status: l.T("assignment_status." + strings.ToLower(strings.TrimPrefix(a.GetStatus().String(), "ASSIGNMENT_STATUS_")))}
		if a.GetResolvedAt() != nil {
			p.Resolved = c.when(a.GetResolvedAt().AsTime())
		}
		for i, ph := range a.GetPhotos() {
			p.Photos = append(p.Photos, gridPhotoLink{gridPhotoURL(is.GetId(), ph.GetId()), l.T("grid.photo.resolved", p.Unit, i+1)})
		}
		v.Parts = append(v.Parts, p)
	}
	if vr := is.GetVerification(); vr != nil {
		v.Verification = &gridVerdict{Passed: vr.GetPassed(), By: vr.GetVerifiedBy(), At: c.when(vr.GetVerifiedAt().AsTime()), Reason: vr.GetReason()}
	}
	if r := is.GetRating(); r != nil {
		v.Rating = &gridRated{Score: r.GetScore(), Comment: r.GetComment(), By: r.GetRatedBy(), At: c.when(r.GetRatedAt().AsTime()), Reopened: r.GetReopened()}
	}
	for s := 5; s >= 1; s-- {
		v.Scores = append(v.Scores, gridOption{strconv.Itoa(s), l.T("grid.rate.score_" + strconv.Itoa(s))})
	}
	c.render(q.w, code, "grid-issue.html", page{L: l, Session: &q.session, Path: gridIssuePath + id, Error: msg, Data: v})
}

// gridPhotoURL is where the grid worker's pages serve a photo of an issue.
func gridPhotoURL(issueID, photoID string) string {
	return gridIssuePath + issueID + "/photos/" + photoID
}

// gridVerify records the grid worker's check on site: pass closes the issue, fail (with the
// reason, which is required) reopens the lead's part.
func (c *Console) gridVerify(q *request) {
	l := q.lang
	f := gridVerifyForm{Result: q.r.PostFormValue("result"), Reason: strings.ReplaceAll(q.r.PostFormValue("reason"), "\r\n", "\n")}
	reason := strings.TrimSpace(f.Reason)
	field := "verify-" + f.Result + "-reason"
	switch n := utf8.RuneCountInString(reason); {
	case f.Result != "pass" && f.Result != "fail":
		f.Errors.add("verify", l.T("grid.verify.error_result"))
	case !utf8.ValidString(reason):
		f.Errors.add(field, l.T("grid.error.encoding"))
	case f.Result == "fail" && n == 0:
		f.Errors.add(field, l.T("grid.verify.error_reason"))
	case n > gridMaxRemark:
		f.Errors.add(field, l.T("grid.error.remark_long", gridMaxRemark, n))
	}
	if len(f.Errors) > 0 {
		c.gridRenderIssue(q, http.StatusBadRequest, f, gridRateForm{}, l.T("grid.form.refused"))
		return
	}
	_, err := whistlev1.NewIntakeServiceClient(c.cfg.Conn).VerifyIssue(q.r.Context(),
		&whistlev1.VerifyIssueRequest{IssueId: q.r.PathValue("id"), Passed: f.Result == "pass", Reason: reason}, q.call())
	if err != nil {
		c.gridIssueRefused(q, err, f, gridRateForm{})
		return
	}
	http.Redirect(q.w, q.r, gridIssuePath+q.r.PathValue("id"), http.StatusSeeOther)
}

// gridRate records the raiser's rating, 1 to 5 with an optional comment; an unsatisfied one may
// ask for the issue to be handled again.
func (c *Console) gridRate(q *request) {
	l := q.lang
	f := gridRateForm{Score: q.r.PostFormValue("score"), Comment: strings.ReplaceAll(q.r.PostFormValue("comment"), "\r\n", "\n"),
		Reopen: q.r.PostFormValue("reopen") == "yes"}
	comment := strings.TrimSpace(f.Comment)
	score, err := strconv.Atoi(f.Score)
	if err != nil || score < 1 || score > 5 {
		f.Errors.add("rate-score-5", l.T("grid.rate.error_score"))
	}
	switch n := utf8.RuneCountInString(comment); {
	case !utf8.ValidString(comment):
		f.Errors.add("rate-comment", l.T("grid.error.encoding"))
	case n > gridMaxRemark:
		f.Errors.add("rate-comment", l.T("grid.error.remark_long", gridMaxRemark, n))
	}
	if f.Reopen && score > gridMaxReopeningScore {
		f.Errors.add("rate-reopen", l.T("grid.rate.error_reopen", gridMaxReopeningScore))
	}
	if len(f.Errors) > 0 {
		c.gridRenderIssue(q, http.StatusBadRequest, gridVerifyForm{}, f, l.T("grid.form.refused"))
		return
	}
	_, err = whistlev1.NewIntakeServiceClient(c.cfg.Conn).RateIssue(q.r.Context(),
		&whistlev1.RateIssueRequest{IssueId: q.r.PathValue("id"), Score: int32(score), Comment: comment, Reopen: f.Reopen}, q.call())
	if err != nil {
		c.gridIssueRefused(q, err, gridVerifyForm{}, f)
		return
	}
	http.Redirect(q.w, q.r, gridIssuePath+q.r.PathValue("id"), http.StatusSeeOther)
}

// gridIssueRefused shows the issue's page again with what the services refused, keeping the form
// as it was sent; a failure that is no refusal gets c.fail's page.
func (c *Console) gridIssueRefused(q *request, err error, vf gridVerifyForm, rf gridRateForm) {
	code, msg, ok := refusal(q.lang, err)
	if !ok {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	c.gridRenderIssue(q, code, vf, rf, q.lang.T("grid.form.api_refused", msg))
}

// gridPhoto sends a photo of an issue the grid worker may see, as GetPhoto streams it.
func (c *Console) gridPhoto(q *request) {
	stream, err := whistlev1.NewIntakeServiceClient(c.cfg.Conn).GetPhoto(q.r.Context(),
		&whistlev1.GetPhotoRequest{IssueId: q.r.PathValue("id"), PhotoId: q.r.PathValue("photo")}, q.call())
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	first, err := stream.Recv() // a stream's refusal comes with its first message
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	ph := first.GetPhoto()
	if !slices.Contains(gridPhotoTypes, ph.GetContentType()) {
		// Only the kinds intake stores are sent, so that nothing else is served as the console's.
		c.fail(q.w, q.r, q.lang, &q.session, fmt.Errorf("console: photo %s is of type %q", ph.GetId(), ph.GetContentType()))
		return
	}
	q.w.Header().Set("Content-Type", ph.GetContentType())
	q.w.Header().Set("Content-Length", strconv.FormatInt(ph.GetSize(), 10))
	for m := first; ; {
		if _, err := q.w.Write(m.GetChunk()); err != nil {
			return // the browser left
		}
		if m, err = stream.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				// The length sent tells the browser the photo was cut short.
				c.cfg.Logger.Warn("console: a photo was cut short", "photo", ph.GetId(), "err", err)
			}
			return
		}
	}
}
