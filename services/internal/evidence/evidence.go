// Package evidence keeps the photos attached to issues, at a raise and at a resolve, in a
// JetStream object store. A photo is uploaded first and is pending: it belongs to its uploader and
// to one purpose (a raise in a grid, or a resolve of an issue). A raise or a resolve that names it
// claims it for its case, and the event it appends carries the photo's id, digest, type and size.
// A photo no event names is removed by the sweep: an unclaimed one PendingTTL after its upload, a
// claimed one PendingTTL after its claim unless the claiming case's events name it, in which case
// it is marked referenced and kept for good. The sweep asks the stream, not any projection, so a
// wiped Redis can never make it remove a photo an event names.
package evidence

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/otelx"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
)

// Bucket is the object store of the photos; its stream is "OBJ_" + Bucket, which each
// service's NATS user may write ($O.<Bucket>.>) and intake's may purge (a photo's removal).
const Bucket = "whistle_photos"

// Limits on photos. Each is checked before anything is written.
const (
	// MaxPhotoBytes bounds the size of one photo as uploaded.
	MaxPhotoBytes = 8 << 20
	// MaxPhotosPerRaise bounds the photos a raise names.
	MaxPhotosPerRaise = 6
	// MaxPhotosPerResolve bounds the photos a resolve names.
	MaxPhotosPerResolve = 6
	// PendingTTL is how long a photo no event names is kept: after its upload while unclaimed,
	// after its claim once a raise or a resolve claimed it.
	PendingTTL = 24 * time.Hour
	// ClaimGrace is how long before PendingTTL a pending photo stops being claimable, so that a
	// claim in flight never meets the sweep removing the photo under it.
	ClaimGrace = time.Hour
	// SweepInterval is how often the sweep looks for photos to remove.
	SweepInterval = 10 * time.Minute
	// ChunkSize is the size of the chunks a photo is stored and sent in.
	ChunkSize = 64 << 10
)

// Photo is a stored photo as events and views name it.
type Photo struct {
	ID          string `json:"id"`
	Digest      string `json:"digest"` // "sha256:<hex>" of the stored bytes
	ContentType string `json:"type"`
	Size        int64  `json:"size"`
}

// IDs returns the photos' ids in order.
func IDs(ps []Photo) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

// Purpose is what a photo was uploaded for: a raise in a grid, or a resolve of an issue.
// Exactly one of the two is set.
type Purpose struct {
	GridID  string
	IssueID string
}

// String says the purpose for people.
func (p Purpose) String() string {
	if p.IssueID != "" {
		return "issue " + p.IssueID
	}
	return "a raise in grid " + p.GridID
}

// The metadata keys a photo's object carries.
const (
	keyOwner      = "whistle-owner"
	keyGrid       = "whistle-grid"
	keyIssue      = "whistle-issue"
	keyUploaded   = "whistle-uploaded"
	keyDigest     = "whistle-digest"
	keyType       = "whistle-type"
	keySize       = "whistle-size"
	keyClaim      = "whistle-claim"
	keyClaimed    = "whistle-claimed"
	keyReferenced = "whistle-referenced"
)

// idPattern is the form of the ids Put gives.
var idPattern = regexp.MustCompile(`^ph_[A-Z2-7]{26}$`)

const scope = "github.com/whistle-dispatch/whistle/services/internal/evidence"

var (
	photoCount, _ = otel.Meter(scope).Int64Counter("whistle.evidence.photos",
		metric.WithDescription("Photos stored, claimed, marked referenced and removed by the sweep, by outcome."))
	// The outcomes' attribute sets are built once.
	storedPhoto     = otelx.Attributes("outcome", "stored")
	claimedPhoto    = otelx.Attributes("outcome", "claimed")
	referencedPhoto = otelx.Attributes("outcome", "referenced")
	removedPhoto    = otelx.Attributes("outcome", "removed")
)

// ErrNotFound means no photo has the id (never uploaded, or removed).
var ErrNotFound = errors.New("no such photo")

// Config configures a Store.
type Config struct {
	// Replicas is the bucket's replication factor when it does not exist yet; 0 means 1. A
	// bucket that exists is used as it is, never updated, as the event streams are.
	Replicas int
	// KeepMetadata stores photos as uploaded; by default the metadata that may say where and
	// when a photo was taken (EXIF, XMP, IPTC, text chunks) is stripped first.
	KeepMetadata bool
	// Clock is when uploads and claims happen and the sweep judges ages; nil means the real one.
	Clock clock.Clock
	// Logger tells what the sweep removed; nil logs nothing.
	Logger *slog.Logger
}

// Store is the photo bucket. It is safe for concurrent use.
type Store struct {
	obs jetstream.ObjectStore
	cfg Config
}

// Open returns the store on the photo bucket, creating the bucket when it is missing.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Store, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("evidence: jetstream: %w", err)
	}
	for range 2 {
		obs, err := js.ObjectStore(ctx, Bucket)
		if err == nil {
			return &Store{obs: obs, cfg: cfg}, nil
		}
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("evidence: bucket %s: %w", Bucket, err)
		}
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      Bucket,
			Description: "Whistle's evidence photos, named by events by id and digest",
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		})
		if err == nil {
			return &Store{obs: obs, cfg: cfg}, nil
		}
		if !errors.Is(err, jetstream.ErrBucketExists) {
			return nil, fmt.Errorf("evidence: create bucket %s with %d replicas: %w", Bucket, cfg.Replicas, err)
		}
	}
	return nil, fmt.Errorf("evidence: bucket %s: created by another process and then not found", Bucket)
}

// ReadUpload reads an upload's bytes, refusing more than MaxPhotoBytes: next returns the next
// chunk, io.EOF at the end. Nothing is stored while reading, so an upload cut off half-way
// leaves nothing behind.
func ReadUpload(next func() ([]byte, error)) ([]byte, error) {
	var buf bytes.Buffer
	for {
		chunk, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if buf.Len()+len(chunk) > MaxPhotoBytes {
			return nil, apiedge.Invalid("chunk", "the photo is larger than %d bytes", MaxPhotoBytes)
		}
		buf.Write(chunk)
	}
	if buf.Len() == 0 {
		return nil, apiedge.Invalid("chunk", "no bytes were sent")
	}
	return buf.Bytes(), nil
}

// Put checks data is a photo (by its bytes), strips its metadata unless the city keeps it, and
// stores it as pending, owned by owner for purpose. The digest is of the bytes stored.
func (s *Store) Put(ctx context.Context, owner string, purpose Purpose, data []byte) (Photo, error) {
	if len(data) > MaxPhotoBytes {
		return Photo{}, apiedge.Invalid("chunk", "the photo is larger than %d bytes", MaxPhotoBytes)
	}
	ct, stored, err := Clean(data, !s.cfg.KeepMetadata)
	if err != nil {
		return Photo{}, apiedge.Invalid("chunk", "%v", err)
	}
	sum := sha256.Sum256(stored)
	p := Photo{ID: "ph_" + rand.Text(), Digest: "sha256:" + hex.EncodeToString(sum[:]), ContentType: ct, Size: int64(len(stored))}
	meta := jetstream.ObjectMeta{
		Name: p.ID,
		Metadata: map[string]string{
			keyOwner: owner, keyGrid: purpose.GridID, keyIssue: purpose.IssueID,
			keyUploaded: s.cfg.Clock.Now().UTC().Format(time.RFC3339Nano),
			keyDigest:   p.Digest, keyType: p.ContentType, keySize: strconv.FormatInt(p.Size, 10),
		},
		Opts: &jetstream.ObjectMetaOptions{ChunkSize: ChunkSize},
	}
	if _, err := s.obs.Put(ctx, meta, bytes.NewReader(stored)); err != nil {
		return Photo{}, fmt.Errorf("evidence: store photo: %w", err)
	}
	photoCount.Add(ctx, 1, storedPhoto)
	return p, nil
}

// info is a photo's object as the store holds it.
type info struct {
	Photo
	owner      string
	purpose    Purpose
	uploaded   time.Time
	claim      string
	claimed    time.Time
	referenced bool
	meta       jetstream.ObjectMeta
}

// read reads what an object's metadata says of its photo.
func read(oi *jetstream.ObjectInfo) info {
	m := oi.Metadata
	size, _ := strconv.ParseInt(m[keySize], 10, 64)
	uploaded, _ := time.Parse(time.RFC3339Nano, m[keyUploaded])
	claimed, _ := time.Parse(time.RFC3339Nano, m[keyClaimed])
	return info{
		Photo:    Photo{ID: oi.Name, Digest: m[keyDigest], ContentType: m[keyType], Size: size},
		owner:    m[keyOwner],
		purpose:  Purpose{GridID: m[keyGrid], IssueID: m[keyIssue]},
		uploaded: uploaded, claim: m[keyClaim], claimed: claimed, referenced: m[keyReferenced] == "true",
		meta: oi.ObjectMeta,
	}
}

// lookup reads a photo's metadata.
func (s *Store) lookup(ctx context.Context, id string) (info, error) {
	if !idPattern.MatchString(id) {
		return info{}, ErrNotFound
	}
	oi, err := s.obs.GetInfo(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return info{}, ErrNotFound
	}
	if err != nil {
		return info{}, fmt.Errorf("evidence: photo %s: %w", id, err)
	}
	return read(oi), nil
}

// Claim checks that every id names a photo owner uploaded for purpose, not claimed by another
// case and not about to expire, at most max of them and none twice, and then claims each for
// caseID, so that the sweep keeps it while the event that names it is appended. It returns the
// photos in the order named. Every refusal is an InvalidArgument on field and comes before any
// claim is written; claiming again for the same case (a retry) is allowed.
func (s *Store) Claim(ctx context.Context, owner string, purpose Purpose, caseID, field string, ids []string, max int) ([]Photo, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > max {
		return nil, apiedge.Invalid(field, "at most %d photos, not %d", max, len(ids))
	}
	now := s.cfg.Clock.Now()
	infos := make([]info, 0, len(ids))
	seen := map[string]bool{}
	for i, id := range ids {
		if seen[id] {
			return nil, apiedge.Invalid(field, "photo %q is named twice", id)
		}
		seen[id] = true
		in, err := s.lookup(ctx, id)
		at := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil, apiedge.Invalid(at, "no photo %q (upload it first; a photo no issue names is kept %s)", id, PendingTTL)
		case err != nil:
			return nil, err
		case in.owner != owner:
			return nil, apiedge.Invalid(at, "photo %q was uploaded by someone else", id)
		case in.purpose != purpose:
			return nil, apiedge.Invalid(at, "photo %q was uploaded for %s, not for %s", id, in.purpose, purpose)
		case in.claim != "" && in.claim != caseID:
			return nil, apiedge.Invalid(at, "photo %q belongs to case %s", id, in.claim)
		case in.claim == "" && now.Sub(in.uploaded) >= PendingTTL-ClaimGrace:
			return nil, apiedge.Invalid(at, "photo %q was uploaded %s ago and is about to be removed; upload it again", id, now.Sub(in.uploaded).Round(time.Minute))
		}
		infos = append(infos, in)
	}
	out := make([]Photo, 0, len(infos))
	for _, in := range infos {
		if in.claim == "" {
			if err := s.setMeta(ctx, in, map[string]string{keyClaim: caseID, keyClaimed: now.UTC().Format(time.RFC3339Nano)}); err != nil {
				return nil, err
			}
			photoCount.Add(ctx, 1, claimedPhoto)
		}
		out = append(out, in.Photo)
	}
	return out, nil
}

// setMeta adds keys to a photo's metadata.
func (s *Store) setMeta(ctx context.Context, in info, set map[string]string) error {
	meta := in.meta
	m := make(map[string]string, len(meta.Metadata)+len(set))
	for k, v := range meta.Metadata {
		m[k] = v
	}
	for k, v := range set {
		m[k] = v
	}
	meta.Metadata = m
	if err := s.obs.UpdateMeta(ctx, in.ID, meta); err != nil {
		return fmt.Errorf("evidence: photo %s: %w", in.ID, err)
	}
	return nil
}

// Get returns a photo and a reader of its bytes, which the caller closes.
func (s *Store) Get(ctx context.Context, id string) (Photo, io.ReadCloser, error) {
	in, err := s.lookup(ctx, id)
	if err != nil {
		return Photo{}, nil, err
	}
	r, err := s.obs.Get(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return Photo{}, nil, ErrNotFound
	}
	if err != nil {
		return Photo{}, nil, fmt.Errorf("evidence: photo %s: %w", id, err)
	}
	return in.Photo, r, nil
}

// Stored lists the photos the bucket holds, pending or named, for operators and tests.
func (s *Store) Stored(ctx context.Context) ([]Photo, error) {
	objs, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("evidence: list photos: %w", err)
	}
	out := make([]Photo, 0, len(objs))
	for _, oi := range objs {
		out = append(out, read(oi).Photo)
	}
	return out, nil
}

// Named reports whether the events of a case name a photo; the sweep asks it of a claimed photo
// before removing it.
type Named func(ctx context.Context, caseID, photoID string) (bool, error)

// SweepResult counts what one sweep did.
type SweepResult struct {
	Removed, Referenced, Kept int
}

// Sweep removes the photos no event names and that are past their time: unclaimed ones
// PendingTTL after their upload, claimed ones PendingTTL after their claim when named says the
// claiming case's events do not name them; a claimed photo that an event names is marked
// referenced and never looked at again.
func (s *Store) Sweep(ctx context.Context, named Named) (SweepResult, error) {
	var res SweepResult
	objs, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("evidence: list photos: %w", err)
	}
	now := s.cfg.Clock.Now()
	for _, oi := range objs {
		in := read(oi)
		switch {
		case in.referenced:
			res.Kept++
			continue
		case in.claim == "" && now.Sub(in.uploaded) < PendingTTL,
			in.claim != "" && now.Sub(in.claimed) < PendingTTL:
			res.Kept++
			continue
		}
		if in.claim != "" {
			ok, err := named(ctx, in.claim, in.ID)
			if err != nil {
				// Kept: a photo is removed only when the stream says no event names it.
				s.cfg.Logger.Warn("photo sweep: could not read the claiming case; photo kept", "photo", in.ID, "case", in.claim, "err", err)
				res.Kept++
				continue
			}
			if ok {
				if err := s.setMeta(ctx, in, map[string]string{keyReferenced: "true"}); err != nil {
					return res, err
				}
				res.Referenced++
				photoCount.Add(ctx, 1, referencedPhoto)
				continue
			}
		}
		if err := s.obs.Delete(ctx, in.ID); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return res, fmt.Errorf("evidence: remove photo %s: %w", in.ID, err)
		}
		s.cfg.Logger.Info("removed a photo no event names", "photo", in.ID, "uploaded", in.uploaded, "claim", in.claim)
		res.Removed++
		photoCount.Add(ctx, 1, removedPhoto)
	}
	return res, nil
}

// RunSweeper sweeps every SweepInterval on the store's clock until ctx ends; a failed sweep is
// logged and tried again at the next one.
func (s *Store) RunSweeper(ctx context.Context, named Named) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.cfg.Clock.After(SweepInterval):
		}
		if _, err := s.Sweep(ctx, named); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("photo sweep failed; trying again later", "err", err)
		}
	}
}
