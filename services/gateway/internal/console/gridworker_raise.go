package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// gridPhotoTypes are the kinds of image intake stores, as http.DetectContentType names them.
var gridPhotoTypes = []string{"image/jpeg", "image/png", "image/webp"}

// gridFieldError is what is wrong with one field of a form, for people; Field is the id of the
// input it is about, which the page's list of errors links to.
type gridFieldError struct{ Field, Message string }

// gridErrors are what is wrong with a form, in the order of its fields.
type gridErrors []gridFieldError

// add records what is wrong with a field.
func (e *gridErrors) add(field, msg string) { *e = append(*e, gridFieldError{field, msg}) }

// Of is what is wrong with the field, every problem found, or "" when nothing is.
func (e gridErrors) Of(field string) string {
	var msgs []string
	for _, fe := range e {
		if fe.Field == field {
			msgs = append(msgs, fe.Message)
		}
	}
	return strings.Join(msgs, " ")
}

// gridRaiseForm is the raise form as the page shows it: fresh, or as it was sent, with what is
// wrong with it, so that a refusal keeps what the person wrote.
type gridRaiseForm struct {
	// RequestID is the raise's idempotency key, made when the form is first shown and kept by
	// every showing of it after a refusal, so that however often it is sent it raises once.
	RequestID                                    string
	Category, Urgency, Text, Latitude, Longitude string
	Errors                                       gridErrors
	// PhotosAgain is set when photos were chosen but the form came back: a browser keeps no file
	// a page gives it, so they must be chosen again.
	PhotosAgain bool
}

// gridRaiseInput is a raise form that passed the checks at the edge, ready for the API.
type gridRaiseInput struct {
	urgency  whistlev1.Urgency
	text     string
	location *whistlev1.Location
	photos   []*multipart.FileHeader
}

// newGridRaiseForm is a fresh raise form with its own request id.
func newGridRaiseForm() gridRaiseForm {
	return gridRaiseForm{RequestID: gridRequestID(), Urgency: gridUrgencies[0].value}
}

// gridRequestID is a fresh idempotency key: "web-" and 26 random base-32 characters, which intake
// accepts ([A-Za-z0-9._:-], at most 64).
func gridRequestID() string { return "web-" + rand.Text() }

// gridValidRequestID reports whether id is a key intake accepts: 1 to 64 of [A-Za-z0-9._:-].
func gridValidRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r)) {
			return false
		}
	}
	return true
}

// gridRaiseBody bounds a raise form's body and reads it before h, so that a form too large is
// refused as such, in the person's language, rather than as a form without its CSRF token (which h
// would find missing from a body it could not read). Only a grid worker's body is read at all: h
// refuses anyone else without reading it.
func (c *Console) gridRaiseBody(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss, ok, err := c.sessions.of(r)
		if err != nil || !ok || !slices.Contains(gridWorkers, ss.Principal.Role) {
			h(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, gridMaxRaiseBody)
		err = r.ParseMultipartForm(gridRaiseMemory)
		if err == nil || errors.Is(err, http.ErrNotMultipart) {
			h(w, r) // the CSRF token is then checked in the form as read
			return
		}
		l := c.catalogs.languageOf(r)
		code, msg := http.StatusBadRequest, l.T("grid.raise.unreadable")
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			code, msg = http.StatusRequestEntityTooLarge, l.T("grid.raise.too_large", gridMaxPhotos, gridMaxPhotoBytes>>20)
		}
		c.render(w, code, "refused.html", page{L: l, Session: &ss, Path: gridPath, Error: msg})
	}
}

// gridRaise raises an issue from the form: its photos are uploaded first, then the issue is raised
// with the form's request id, and the person is sent to the issue's page. What is wrong with the
// form, or what the services refuse, is shown on the form, which keeps what was written.
func (c *Console) gridRaise(q *request) {
	cats, err := c.gridCategories(q)
	if err != nil {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	f, in := readGridRaiseForm(q.r, q.lang, cats)
	if len(f.Errors) > 0 {
		c.gridRender(q, http.StatusBadRequest, cats, f, q.lang.T("grid.raise.refused"))
		return
	}
	grid := q.session.Principal.Scope
	ids, err := c.gridFormPhotos(q, f.RequestID, grid, in.photos)
	if err == nil {
		var resp *whistlev1.RaiseIssueResponse
		resp, err = whistlev1.NewIntakeServiceClient(c.cfg.Conn).RaiseIssue(q.r.Context(), &whistlev1.RaiseIssueRequest{
			RequestId: f.RequestID, GridId: grid, CategoryId: f.Category, Urgency: in.urgency, Text: in.text,
			Location: in.location, PhotoIds: ids}, q.call())
		if err == nil {
			http.Redirect(q.w, q.r, Path+"issues/"+resp.GetIssue().GetId(), http.StatusSeeOther)
			return
		}
	}
	code, msg, ok := refusal(q.lang, err)
	if !ok {
		c.fail(q.w, q.r, q.lang, &q.session, err)
		return
	}
	f.PhotosAgain = len(in.photos) > 0
	c.gridRender(q, code, cats, f, q.lang.T("grid.raise.api_refused", msg))
}

// readGridRaiseForm reads the raise form and checks each field as intake would, saying what is
// wrong in the person's language; the form returned keeps what was sent.
func readGridRaiseForm(r *http.Request, l lang, cats []gridOption) (gridRaiseForm, gridRaiseInput) {
	f := gridRaiseForm{
		RequestID: r.PostFormValue("request_id"), Category: strings.TrimSpace(r.PostFormValue("category")),
		Urgency: r.PostFormValue("urgency"), Text: strings.ReplaceAll(r.PostFormValue("text"), "\r\n", "\n"),
		Latitude: strings.TrimSpace(r.PostFormValue("latitude")), Longitude: strings.TrimSpace(r.PostFormValue("longitude")),
	}
	var in gridRaiseInput
	if !gridValidRequestID(f.RequestID) {
		// Not a form this console made: a fresh key, so that sending it again raises once.
		f.RequestID = gridRequestID()
		f.Errors.add("raise", l.T("grid.error.request_id"))
	}
	switch {
	case f.Category == "":
		f.Errors.add("category", l.T("grid.error.category_missing"))
	case !slices.ContainsFunc(cats, func(o gridOption) bool { return o.Value == f.Category }):
		f.Errors.add("category", l.T("grid.error.category_unknown"))
	}
	if f.Urgency == "" {
		f.Urgency = gridUrgencies[0].value
	}
	if i := slices.IndexFunc(gridUrgencies, func(u gridUrgency) bool { return u.value == f.Urgency }); i >= 0 {
		in.urgency = gridUrgencies[i].u
	} else {
		f.Errors.add("urgency-"+gridUrgencies[0].value, l.T("grid.error.urgency"))
	}
	in.text = strings.TrimSpace(f.Text)
	switch n := utf8.RuneCountInString(in.text); {
	case !utf8.ValidString(in.text):
		f.Errors.add("text", l.T("grid.error.encoding"))
	case n == 0:
		f.Errors.add("text", l.T("grid.error.text_missing"))
	case n > gridMaxText:
		f.Errors.add("text", l.T("grid.error.text_long", gridMaxText, n))
	}
	in.location = readGridPoint(&f, l)
	in.photos = readGridPhotos(r, &f, l)
	if len(f.Errors) > 0 {
		f.PhotosAgain = len(in.photos) > 0
	}
	return f, in
}

// readGridPoint reads the point the browser found, if any: both coordinates, or neither, when the
// gridRaise is placed in the worker's grid alone.
func readGridPoint(f *gridRaiseForm, l lang) *whistlev1.Location {
	if f.Latitude == "" && f.Longitude == "" {
		return nil
	}
	lat, errLat := strconv.ParseFloat(f.Latitude, 64)
	long, errLong := strconv.ParseFloat(f.Longitude, 64)
	if errLat != nil || errLong != nil || math.IsNaN(lat) || math.IsNaN(long) || lat < -90 || lat > 90 || long < -180 || long > 180 {
		f.Errors.add("locate", l.T("grid.error.location"))
		return nil
	}
	return &whistlev1.Location{Latitude: lat, Longitude: long}
}

// readGridPhotos returns the photos chosen, checking their number, size and kind; a file input left
// empty sends a part with no name and no bytes, which is no photo.
func readGridPhotos(r *http.Request, f *gridRaiseForm, l lang) []*multipart.FileHeader {
	if r.MultipartForm == nil {
		return nil
	}
	var photos []*multipart.FileHeader
	for _, fh := range r.MultipartForm.File["photos"] {
		if fh.Filename == "" && fh.Size == 0 {
			continue
		}
		photos = append(photos, fh)
	}
	if len(photos) > gridMaxPhotos {
		f.Errors.add("photos", l.T("grid.error.photos_many", gridMaxPhotos, len(photos)))
		return photos
	}
	for _, fh := range photos {
		name := filepath.Base(fh.Filename)
		if fh.Size == 0 {
			f.Errors.add("photos", l.T("grid.error.photo_empty", name))
			continue
		}
		if fh.Size > gridMaxPhotoBytes {
			f.Errors.add("photos", l.T("grid.error.photo_large", name, gridMaxPhotoBytes>>20))
			continue
		}
		switch kind, err := gridSniff(fh); {
		case err != nil:
			f.Errors.add("photos", l.T("grid.error.photo_unreadable", name))
		case !slices.Contains(gridPhotoTypes, kind):
			f.Errors.add("photos", l.T("grid.error.photo_kind", name))
		}
	}
	return photos
}

// gridSniff is the kind of file a photo is, by its first bytes.
func gridSniff(fh *multipart.FileHeader) (string, error) {
	file, err := fh.Open()
	if err != nil {
		return "", err
	}
	defer file.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(file, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	return http.DetectContentType(head[:n]), nil
}

// gridFormPhotos uploads the form's photos for a raise in grid and returns their ids in the form's
// order, a photo chosen twice once. Each id is kept in Redis under the form's request id for the
// session's life (a form is sent only within its session, whose CSRF token it carries), so that
// the same form sent again, by a double submit or a retry after a lost answer, names the photos it
// named before: RaiseIssue then replays the first raise, where new uploads, with new ids, would
// make it refuse the request as a different one. Of two sends at once, the photo recorded first
// wins and both name it; the other upload, named by no raise, is swept by intake.
func (c *Console) gridFormPhotos(q *request, requestID, grid string, photos []*multipart.FileHeader) ([]string, error) {
	ctx := q.r.Context()
	key := keyPrefix + "raise:" + q.session.ID + ":" + requestID
	var ids []string
	for _, fh := range photos {
		data, err := readPhoto(fh)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		digest := hex.EncodeToString(sum[:])
		id, err := c.cfg.Redis.HGet(ctx, key, digest).Result()
		if errors.Is(err, redis.Nil) {
			if id, err = c.uploadPhoto(q, grid, "", data); err != nil {
				return nil, err
			}
			var first *redis.StringCmd
			_, err = c.cfg.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSetNX(ctx, key, digest, id)
				p.Expire(ctx, key, SessionTTL)
				first = p.HGet(ctx, key, digest)
				return nil
			})
			id = first.Val()
		}
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
