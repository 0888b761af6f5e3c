// Package app is intake's command and query handlers: raise an issue exactly once per request,
// and read, list and watch issues within the caller's scope.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/feed"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
	"github.com/whistle-dispatch/whistle/services/intake/internal/protoconv"
	"github.com/whistle-dispatch/whistle/services/intake/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/access"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

const instrumentation = "github.com/whistle-dispatch/whistle/services/intake"

var (
	tracer    = otel.Tracer(instrumentation)
	raises, _ = otel.Meter(instrumentation).Int64Counter("whistle.intake.raises",
		metric.WithDescription("Raise calls that succeeded, by outcome: raised (a new issue) or replayed (a retry)."))
	// The outcomes' attribute sets are built once, so that counting a raise builds none.
	raisedOutcome   = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "raised")))
	replayedOutcome = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "replayed")))
)

// App handles intake's commands and queries. It is safe for concurrent use.
type App struct {
	log    *eventlog.Log
	store  *store.Store
	cat    *catalog.Catalog
	clock  clock.Clock
	photos *evidence.Store
	// rosters say who may act for a unit that has one, for uploads of a resolve's photos.
	rosters *roster.Rosters
	// uploading holds a place for each upload being read, at most MaxUploadsInFlight.
	uploading chan struct{}
}

// New returns the handlers over the log, the view, the catalog, the photo store and the rosters.
func New(log *eventlog.Log, st *store.Store, cat *catalog.Catalog, clk clock.Clock, photos *evidence.Store, rosters *roster.Rosters) *App {
	return &App{log: log, store: st, cat: cat, clock: clk, photos: photos, rosters: rosters,
		uploading: make(chan struct{}, MaxUploadsInFlight)}
}

// RaiseCommand is a raise as the caller asked for it.
type RaiseCommand struct {
	RequestID  string // empty: the server picks one
	GridID     string
	CategoryID string
	Urgency    domain.Urgency
	Text       string
	Location   *domain.Location
	PhotoIDs   []string // photos uploaded for a raise in the grid, by the caller
	// Contact and MediaURL are what an integrator gives for the resident it raises for.
	Contact  *domain.Contact
	MediaURL string
}

// Raise records a new issue, or returns the one this caller's request already raised with
// replayed set; a request id that comes back with a different raise is refused with a
// *domain.RequestReusedError. The case number is derived from the caller and the request id, so every retry,
// whenever it comes, meets the first raise's events in the stream: a retry within JetStream's
// duplicate window is dropped as a duplicate, a later one loses the conditional append.
func (a *App) Raise(ctx context.Context, p authx.Principal, cmd RaiseCommand) (_ *domain.Issue, replayed bool, err error) {
	ctx, span := tracer.Start(ctx, "app.App.Raise")
	defer span.End()
	raise, err := a.checkRaise(p, cmd)
	if err != nil {
		return nil, false, err
	}
	id := casenum.FromKey(p.Subject + "/" + raise.RequestID)
	// A view that lost state (a wiped Redis) calls for a new raise; the stream refuses it, as a
	// conflict or as a duplicate, and Decide then catches the view up and asks again. So does a
	// retried raise the store no longer holds, which Decide's first round takes as new without a
	// read (eventlog.NewIssue): a new case number is what a raise nearly always brings.
	var is *domain.Issue
	rec, err := a.log.Decide(eventlog.NewIssue(ctx), a.store, id, func(ctx context.Context) (*whistlev1.Event, error) {
		var err error
		if is, err = a.store.Latest(ctx, id); err != nil {
			return nil, err
		}
		if is.LastSeq > 0 {
			// Raised before: no conditional append guards a replay or a refusal, so judge the
			// issue as Redis holds it.
			if is, err = a.store.Load(ctx, id); err != nil {
				return nil, err
			}
		}
		if is.LastSeq > 0 {
			if !is.Raised() || is.RequestID != raise.RequestID || is.RaisedBy != raise.RaisedBy {
				return nil, domain.ErrCaseTaken
			}
			if field := raise.DiffersFrom(is); field != "" {
				return nil, &domain.RequestReusedError{RequestID: raise.RequestID, Case: id, Field: field}
			}
			replayed = true
			return nil, nil
		}
		// A new raise: its photos are claimed for the case before the event that names them is
		// appended, so the sweep keeps them meanwhile; an append that then fails leaves them
		// claimed by no event, and the sweep removes them once their time is up. A replay or a
		// refusal above claims nothing.
		if err := a.claimPhotos(ctx, p, &raise, id, raise.PhotoIDs); err != nil {
			return nil, err
		}
		return raisedEvent(id, p, raise, a.clock), nil
	})
	if err != nil {
		return nil, false, err
	}
	if rec != nil {
		// The raise was appended on the condition that is was the issue's latest state.
		is, err = store.Next(is, *rec)
	} else {
		is, err = a.store.Get(ctx, id) // raised before: as it stands now
	}
	if err != nil {
		return nil, false, err
	}
	outcome := raisedOutcome
	if replayed {
		outcome = replayedOutcome
	}
	raises.Add(ctx, 1, outcome)
	return is, replayed, nil
}

// checkRaise validates a raise field by field and checks the caller's scope, before anything is
// written.
func (a *App) checkRaise(p authx.Principal, cmd RaiseCommand) (domain.Raise, error) {
	r := domain.Raise{RequestID: cmd.RequestID, RaisedBy: p.Subject, CategoryID: cmd.CategoryID, Urgency: cmd.Urgency, Location: cmd.Location,
		PhotoIDs: cmd.PhotoIDs, Contact: cmd.Contact, MediaURL: cmd.MediaURL}
	if r.RequestID == "" {
		r.RequestID = rand.Text()
	}
	if err := domain.CheckRequestID(r.RequestID); err != nil {
		return r, err
	}
	if err := domain.CheckLocation(cmd.Location); err != nil {
		return r, err
	}
	gridID, err := a.place(cmd, &r)
	if err != nil {
		return r, err
	}
	grid, community, street, err := a.cat.Grid(gridID)
	if err != nil {
		return r, apiedge.Invalid("grid_id", "unknown grid %q", gridID)
	}
	r.GridID, r.CommunityID, r.StreetID = grid.ID, community.ID, street.ID
	if err := a.checkCategory(cmd.CategoryID, true); err != nil {
		return r, err
	}
	if r.Urgency == "" {
		r.Urgency = domain.UrgencyNormal
	}
	if r.Text, err = domain.CleanText(cmd.Text); err != nil {
		return r, err
	}
	if err := a.checkForThePublic(p, cmd); err != nil {
		return r, err
	}
	if !access.SeesArea(a.cat, p, r.GridID) && !access.ForThePublic(p) {
		return r, access.Denied("grid " + r.GridID)
	}
	return r, nil
}

// checkForThePublic checks what only an integrator gives: the resident's contact and a media URL.
// An integrator's raise is placed by its point, so that the place, not the integrator, decides
// the grid; and its photos are its media URL, as it holds no grid to upload for.
func (a *App) checkForThePublic(p authx.Principal, cmd RaiseCommand) error {
	if !access.ForThePublic(p) {
		switch {
		case cmd.Contact != nil:
			return apiedge.Invalid("contact", "only an integrator raises for a resident")
		case cmd.MediaURL != "":
			return apiedge.Invalid("media_url", "only an integrator gives a media URL; upload photos with UploadPhoto")
		}
		return nil
	}
	switch {
	case cmd.GridID != "":
		return apiedge.Invalid("grid_id", "an integrator gives the point, which decides the grid")
	case cmd.Location == nil:
		return apiedge.Invalid("location", "required of an integrator: the point decides the grid")
	case len(cmd.PhotoIDs) > 0:
		return apiedge.Invalid("photo_ids", "an integrator gives its photo by media_url")
	}
	if err := domain.CheckContact(cmd.Contact); err != nil {
		return err
	}
	return domain.CheckMediaURL(cmd.MediaURL)
}

// place reads where a raise is: the grid it names, or, when it names none, the grid that contains
// its point, refusing a point in no grid with the nearest named. The compound that contains the
// point, in that grid, is kept too.
func (a *App) place(cmd RaiseCommand, r *domain.Raise) (string, error) {
	gridID := cmd.GridID
	if gridID == "" && cmd.Location == nil {
		return "", apiedge.Invalid("grid_id", "required unless location gives the point")
	}
	if gridID != "" {
		if err := apiedge.CheckID("grid_id", gridID, true); err != nil {
			return "", err
		}
	}
	if cmd.Location == nil {
		return gridID, nil
	}
	if cmd.Location.PlacedByAddress {
		// The compound the address names stands for the point; the record says so.
		cp, lat, lon, err := a.cat.PlaceOfAddress(cmd.Location.Address)
		if err != nil {
			return "", apiedge.Invalid("location.address", "%v; give the point instead", err)
		}
		if gridID != "" && gridID != cp.GridID {
			return "", apiedge.Invalid("grid_id", "%s, but the address names compound %s of grid %s", gridID, cp.ID, cp.GridID)
		}
		placed := *cmd.Location
		placed.Latitude, placed.Longitude = lat, lon
		r.Location, r.CompoundID = &placed, cp.ID
		return cp.GridID, nil
	}
	found, compound, err := a.cat.Locate(cmd.Location.Latitude, cmd.Location.Longitude)
	switch {
	case err != nil && gridID == "":
		return "", apiedge.Invalid("grid_id", "not given, and location: %v", err)
	case gridID == "":
		gridID = found
	}
	if found == gridID {
		r.CompoundID = compound
	}
	return gridID, nil
}

// raisedEvent is the event that creates issue id.
func raisedEvent(id string, p authx.Principal, r domain.Raise, clk clock.Clock) *whistlev1.Event {
	return &whistlev1.Event{
		IssueId:       id,
		OccurredAt:    timestamppb.New(clk.Now()),
		PrevSeq:       0,
		Actor:         &whistlev1.Actor{Subject: p.Subject, Role: string(p.Role), Scope: p.Scope},
		CorrelationId: id,
		Payload: &whistlev1.Event_Raised{Raised: &whistlev1.IssueRaised{
			RequestId: r.RequestID, GridId: r.GridID, CommunityId: r.CommunityID, StreetId: r.StreetID,
			CategoryId: r.CategoryID, Urgency: protoconv.UrgencyOut(r.Urgency), Text: r.Text,
			Location: protoconv.LocationOut(r.Location), CompoundId: r.CompoundID,
			Photos: evidence.ToProto(r.Photos), Contact: protoconv.ContactOut(r.Contact), MediaUrl: r.MediaURL,
		}},
	}
}

// Get returns an issue the caller may see; one they may not see is not found, as if it did not
// exist. An issue the view does not hold yet but the stream does (a raise that another replica
// just answered) is waited for, for at most feed.MaxLag, until the view's consumer has applied
// it: a read never writes the view.
func (a *App) Get(ctx context.Context, p authx.Principal, rawID string) (*domain.Issue, error) {
	ctx, span := tracer.Start(ctx, "app.App.Get")
	defer span.End()
	if err := apiedge.CheckID("id", rawID, true); err != nil {
		return nil, err
	}
	id, err := casenum.Normalize(rawID)
	if err != nil {
		return nil, apiedge.Invalid("id", "%v", err)
	}
	is, err := a.store.Get(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		var last uint64
		if last, err = a.log.Last(ctx, id); err == nil && last > 0 {
			is, err = a.atLeast(ctx, id, last, feed.MaxLag)
		} else if err == nil {
			err = domain.ErrNotFound
		}
	}
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", id, err)
	}
	if !a.sees(p, is) {
		// Answered as a case that does not exist, word for word: a refusal would tell a caller
		// which case numbers are real, and so what was raised in areas they may not see.
		return nil, fmt.Errorf("issue %s: %w", id, domain.ErrNotFound)
	}
	return is, nil
}

// sees reports whether the caller may see an issue: people with an area scope see the issues in
// it; a duty officer sees the issues their department is summoned to.
func (a *App) sees(p authx.Principal, is *domain.Issue) bool {
	if p.Role == authx.RoleOfficer {
		return is.Assignment(p.Scope) != nil
	}
	return access.SeesArea(a.cat, p, is.GridID) || access.ForThePublic(p)
}

// ErrWatchInterrupted is returned by Watch when the stream of events stops while the caller is
// still watching; the caller may watch again.
var ErrWatchInterrupted = errors.New("the event stream stopped; watch again")

// Watch sends the caller every timeline entry of an issue with the view as it stands, first those
// that exist and then each new one as it is stored, until ctx ends. It follows the issue's own
// events in the stream from the last event the view it read holds, so no entry falls between the
// two; each event only says that something happened, and the view, once its consumer has applied
// the event (the watch waits for that, and never applies anything itself), says what.
func (a *App) Watch(ctx context.Context, p authx.Principal, rawID string, send func(*domain.Issue, domain.Entry) error) error {
	is, err := a.Get(ctx, p, rawID)
	if err != nil {
		return err
	}
	id := is.ID
	recs, err := a.log.Follow(ctx, eventlog.IssueSubjects(id), is.LastSeq)
	if err != nil {
		return fmt.Errorf("watch %s: %w", id, err)
	}
	var sent uint64
	for {
		for _, e := range is.Timeline {
			if e.Seq <= sent {
				continue
			}
			if err := send(is, e); err != nil {
				return err
			}
			sent = e.Seq
		}
		select {
		case <-ctx.Done():
			return nil
		case rec, ok := <-recs:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return ErrWatchInterrupted
			}
			// No time limit: the watch shows what the view holds, as soon as it holds it.
			if is, err = a.atLeast(ctx, id, rec.Seq, 0); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// atLeast reads the issue's view once it has applied (or, on a quarantined issue, held) the event
// at seq, waiting for at most limit (zero: until ctx ends). An issue whose raise the view never
// applied is not found.
func (a *App) atLeast(ctx context.Context, id string, seq uint64, limit time.Duration) (*domain.Issue, error) {
	is, err := feed.ReadAtLeast(ctx, seq, limit, func(ctx context.Context) (*domain.Issue, uint64, error) {
		is, err := a.store.Load(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		return is, is.LastSeq, nil
	})
	if err == nil && !is.Raised() {
		err = domain.ErrNotFound
	}
	return is, err
}

// ListQuery is a page request of the issue list.
type ListQuery struct {
	AreaID     string        // empty: the caller's scope
	Status     domain.Status // empty: any
	CategoryID string        // empty: any
	PageSize   int           // 0: apiedge.DefaultPageSize
	PageToken  string
}

// cursor is what a page token of the issue list carries: the case number the previous page ended
// at.
type cursor struct {
	After string `json:"after"`
}

// List pages through the issues of an area within the caller's scope, newest first.
func (a *App) List(ctx context.Context, p authx.Principal, q ListQuery) ([]*domain.Issue, string, error) {
	ctx, span := tracer.Start(ctx, "app.App.List")
	defer span.End()
	if p.Role == authx.RoleOfficer {
		return nil, "", access.Denied("an area: duty officers follow their department's inbox")
	}
	after, err := a.checkList(&q)
	if err != nil {
		return nil, "", err
	}
	area := q.AreaID
	if area == "" {
		area = p.Scope
	}
	if !access.SeesArea(a.cat, p, area) && !(access.ForThePublic(p) && a.cat.Contains(authx.CityScope, area)) {
		return nil, "", access.Denied("area " + area)
	}
	issues, last, err := a.store.List(ctx, store.Query{AreaID: area, Status: q.Status, CategoryID: q.CategoryID, After: after, Limit: q.PageSize})
	if errors.Is(err, store.ErrCursorGone) {
		return nil, "", apiedge.Invalid("page_token", "the page is gone; start again without a token")
	}
	if err != nil {
		return nil, "", err
	}
	return issues, apiedge.EncodeToken(cursor{After: last}), nil
}

// checkList validates a page request field by field, fills in the default page size, and returns
// the case number the page token continues after.
func (a *App) checkList(q *ListQuery) (after string, err error) {
	if err := apiedge.CheckID("area_id", q.AreaID, false); err != nil {
		return "", err
	}
	if q.AreaID != "" {
		if _, err := a.cat.Area(q.AreaID); err != nil {
			return "", apiedge.Invalid("area_id", "unknown area %q", q.AreaID)
		}
	}
	if err := a.checkCategory(q.CategoryID, false); err != nil {
		return "", err
	}
	if q.PageSize, err = apiedge.PageSize(q.PageSize); err != nil {
		return "", err
	}
	c, err := apiedge.DecodeToken[cursor](q.PageToken)
	return c.After, err
}

// checkCategory checks that a category id names a category of the catalog; an empty one passes
// unless it is required.
func (a *App) checkCategory(id string, required bool) error {
	if err := apiedge.CheckID("category_id", id, required); err != nil || id == "" {
		return err
	}
	if _, err := a.cat.Category(id); err != nil {
		return apiedge.Invalid("category_id", "unknown category %q", id)
	}
	return nil
}
