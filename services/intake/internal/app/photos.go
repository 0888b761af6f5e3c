package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/domain"
	"github.com/whistle-dispatch/whistle/services/internal/access"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// MaxUploadsInFlight bounds the uploads a process reads at once: each is held whole in memory, up to
// evidence.MaxPhotoBytes, until it is checked, so at most this many times that.
const MaxUploadsInFlight = 16

// ErrTooManyUploads refuses an upload while MaxUploadsInFlight others are being read.
var ErrTooManyUploads = errors.New("too many photos are being uploaded at once; try again in a moment")

// Upload stores a photo for a raise in gridID or for a resolve of issueID (exactly one is given),
// reading its bytes with next. The caller must be one who may raise in the grid, or act on one of
// the issue's open assignments (a person its unit's roster names, when it has one); that is checked before a byte is read, and nothing is stored
// unless the whole photo arrived and is a JPEG, PNG or WebP within evidence.MaxPhotoBytes. The
// photo is pending until a raise or a resolve of the caller's names it.
func (a *App) Upload(ctx context.Context, p authx.Principal, gridID, issueID string, next func() ([]byte, error)) (evidence.Photo, error) {
	ctx, span := tracer.Start(ctx, "app.App.Upload")
	defer span.End()
	purpose, err := a.uploadPurpose(ctx, p, gridID, issueID)
	if err != nil {
		return evidence.Photo{}, err
	}
	select {
	case a.uploading <- struct{}{}:
		defer func() { <-a.uploading }()
	default:
		return evidence.Photo{}, ErrTooManyUploads
	}
	data, err := evidence.ReadUpload(next)
	if err != nil {
		return evidence.Photo{}, err
	}
	return a.photos.Put(ctx, p.Subject, purpose, data)
}

// uploadPurpose checks what an upload is for and that the caller may use it for that.
func (a *App) uploadPurpose(ctx context.Context, p authx.Principal, gridID, issueID string) (evidence.Purpose, error) {
	switch {
	case gridID == "" && issueID == "":
		return evidence.Purpose{}, apiedge.Invalid("grid_id", "give the grid of the raise the photo is for, or the issue_id of the resolve")
	case gridID != "" && issueID != "":
		return evidence.Purpose{}, apiedge.Invalid("issue_id", "give grid_id for a raise or issue_id for a resolve, not both")
	case gridID != "":
		if err := apiedge.CheckID("grid_id", gridID, true); err != nil {
			return evidence.Purpose{}, err
		}
		if _, _, _, err := a.cat.Grid(gridID); err != nil {
			return evidence.Purpose{}, apiedge.Invalid("grid_id", "unknown grid %q", gridID)
		}
		if !access.SeesArea(a.cat, p, gridID) {
			return evidence.Purpose{}, access.Denied("grid " + gridID)
		}
		return evidence.Purpose{GridID: gridID}, nil
	}
	if err := apiedge.CheckID("issue_id", issueID, true); err != nil {
		return evidence.Purpose{}, err
	}
	is, err := a.Get(ctx, p, issueID)
	if err != nil {
		return evidence.Purpose{}, err
	}
	as := is.Assignment(p.Scope)
	if as == nil || !access.ActsFor(p, as.Unit()) || !as.Status.Open() {
		return evidence.Purpose{}, access.Denied("an open assignment of issue " + is.ID)
	}
	// As the department allows a resolve: a unit with a roster acts through the people it names.
	if r := a.rosters; p.Role == authx.RoleOfficer && r != nil && r.Has(as.Unit()) && !r.Member(as.Unit(), p.Subject) {
		return evidence.Purpose{}, access.Denied(fmt.Sprintf("unit %s: %s is not on its roster", as.Unit(), p.Subject))
	}
	return evidence.Purpose{IssueID: is.ID}, nil
}

// Photo returns a photo of an issue the caller may see, and a reader of its bytes that the
// caller closes. A photo no event of that issue names is not found, whoever's it is.
func (a *App) Photo(ctx context.Context, p authx.Principal, issueID, photoID string) (evidence.Photo, io.ReadCloser, error) {
	ctx, span := tracer.Start(ctx, "app.App.Photo")
	defer span.End()
	if err := apiedge.CheckID("photo_id", photoID, true); err != nil {
		return evidence.Photo{}, nil, err
	}
	is, err := a.Get(ctx, p, issueID)
	if err != nil {
		return evidence.Photo{}, nil, err
	}
	if !is.HasPhoto(photoID) {
		return evidence.Photo{}, nil, fmt.Errorf("issue %s has no photo %q: %w", is.ID, photoID, evidence.ErrNotFound)
	}
	return a.photos.Get(ctx, photoID)
}

// claimPhotos claims the photos a raise names for its case.
func (a *App) claimPhotos(ctx context.Context, p authx.Principal, r *domain.Raise, caseID string, ids []string) error {
	photos, err := a.photos.Claim(ctx, p.Subject, evidence.Purpose{GridID: r.GridID}, caseID, "photo_ids", ids, evidence.MaxPhotosPerRaise)
	r.Photos = photos
	return err
}

// PhotoNamed reports whether an event of the case names the photo, reading the stream: what the
// photo sweep asks before it removes a claimed photo, so that no view, and no wiped Redis, can
// make it remove one an event names.
func (a *App) PhotoNamed(ctx context.Context, caseID, photoID string) (bool, error) {
	id, err := casenum.Normalize(caseID)
	if err != nil {
		return false, err
	}
	recs, err := a.log.Read(ctx, id, 0)
	for _, rec := range recs {
		var ps []*whistlev1.Photo
		switch pl := rec.Event.GetPayload().(type) {
		case *whistlev1.Event_Raised:
			ps = pl.Raised.GetPhotos()
		case *whistlev1.Event_Resolved:
			ps = pl.Resolved.GetPhotos()
		}
		if slices.ContainsFunc(ps, func(ph *whistlev1.Photo) bool { return ph.GetId() == photoID }) {
			return true, nil
		}
	}
	return false, err
}
