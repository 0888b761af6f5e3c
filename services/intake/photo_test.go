package intake_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/casenum"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/evidence/evidencetest"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// waterOnDuty is an officer of water whom the sample rosters name; waterOfficer is not on them.
var waterOnDuty = authx.Principal{Subject: roster.SampleOfficer("water"), Role: authx.RoleOfficer, Scope: "water"}

// upload sends a photo as p for a raise in grid or a resolve of issue.
func (e *env) upload(p authx.Principal, grid, issue string, data []byte) (*whistlev1.Photo, error) {
	return evidence.Upload(context.Background(), e.client(p), grid, issue, data)
}

// mustUpload uploads a photo that must be stored.
func (e *env) mustUpload(p authx.Principal, grid, issue string, data []byte) *whistlev1.Photo {
	e.T.Helper()
	ph, err := e.upload(p, grid, issue, data)
	if err != nil {
		e.T.Fatalf("upload: %v", err)
	}
	return ph
}

// photos opens the photo bucket as the test's own view of it.
func (e *env) photos() *evidence.Store {
	e.T.Helper()
	s, err := evidence.Open(context.Background(), e.Deps.NATS, evidence.Config{Clock: e.Clock})
	if err != nil {
		e.T.Fatal(err)
	}
	return s
}

// stored lists the ids of the photos in the bucket, sorted.
func (e *env) stored() []string {
	e.T.Helper()
	ps, err := e.photos().Stored(context.Background())
	if err != nil {
		e.T.Fatal(err)
	}
	return slices.Sorted(slices.Values(evidence.IDs(ps)))
}

// raiseWithPhotos raises in p's grid with photos.
func (e *env) raiseWithPhotos(p authx.Principal, requestID string, ids ...string) (*whistlev1.Issue, error) {
	resp, err := e.client(p).RaiseIssue(context.Background(), &whistlev1.RaiseIssueRequest{
		RequestId: requestID, GridId: p.Scope, CategoryId: "blocked-drain", Text: "The drain outside no. 12 overflows", PhotoIds: ids,
	})
	return resp.GetIssue(), err
}

// digest is how a photo's digest reads for its bytes.
func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestARaiseWithPhotosKeepsThemStrippedAndWhoeverSeesTheIssueFetchesThem(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	jpg := evidencetest.JPEGWithGPS(1280, 960) // several chunks
	if len(jpg) <= evidence.ChunkSize {
		t.Fatalf("the test JPEG is %d bytes, one chunk", len(jpg))
	}
	a := e.mustUpload(taoyuanWorker, taoyuanWorker.Scope, "", jpg)
	b := e.mustUpload(taoyuanWorker, taoyuanWorker.Scope, "", evidencetest.PNGWithText(20, 20))
	if a.GetContentType() != evidence.JPEG || b.GetContentType() != evidence.PNG || a.GetSize() >= int64(len(jpg)) {
		t.Fatalf("uploaded %v and %v", a, b)
	}
	is, err := e.raiseWithPhotos(taoyuanWorker, "photo-1", a.GetId(), b.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if len(is.GetPhotos()) != 2 || !proto.Equal(is.GetPhotos()[0], a) || !proto.Equal(is.GetPhotos()[1], b) {
		t.Fatalf("the issue's photos are %v, want %v and %v", is.GetPhotos(), a, b)
	}
	raised := e.Stored(is.GetId(), "raised").Event.GetRaised()
	if len(raised.GetPhotos()) != 2 || !proto.Equal(raised.GetPhotos()[0], a) {
		t.Fatalf("the raised event names %v", raised.GetPhotos())
	}

	t.Run("a retry with the same photos is the same raise; with others it is refused", func(t *testing.T) {
		again, err := e.client(taoyuanWorker).RaiseIssue(ctx, &whistlev1.RaiseIssueRequest{
			RequestId: "photo-1", GridId: taoyuanWorker.Scope, CategoryId: "blocked-drain", Text: "The drain outside no. 12 overflows", PhotoIds: []string{a.GetId(), b.GetId()},
		})
		if err != nil || !again.GetReplayed() {
			t.Fatalf("retry: %v, %v", again, err)
		}
		_, err = e.raiseWithPhotos(taoyuanWorker, "photo-1", a.GetId())
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "photo_ids") {
			t.Fatalf("a retry with fewer photos: %v", err)
		}
	})

	t.Run("the stored bytes have no EXIF or XMP and match the digest", func(t *testing.T) {
		ph, data, err := evidence.Fetch(ctx, e.client(cityDesk), is.GetId(), a.GetId())
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(ph, a) || digest(data) != a.GetDigest() {
			t.Fatalf("fetched %v with digest %s", ph, digest(data))
		}
		if bytes.Contains(data, []byte(evidencetest.GPSMarker)) || bytes.Contains(data, []byte("Exif\x00")) {
			t.Fatal("the stored JPEG still holds its EXIF GPS block or XMP")
		}
		if _, clean, _ := evidence.Clean(jpg, true); !bytes.Equal(data, clean) {
			t.Fatal("the stored JPEG is not the upload less its metadata")
		}
	})

	t.Run("the timeline counts the photos", func(t *testing.T) {
		resp, err := e.client(cityDesk).GetIssue(ctx, &whistlev1.GetIssueRequest{Id: is.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if s := resp.GetTimeline()[0].GetSummary(); !strings.HasSuffix(s, "(2 photos)") {
			t.Fatalf("the raise's entry reads %q", s)
		}
	})

	t.Run("who may not see the issue fetches nothing", func(t *testing.T) {
		for _, p := range []authx.Principal{hebinWorker, waterOfficer} {
			if _, _, err := evidence.Fetch(ctx, e.client(p), is.GetId(), a.GetId()); status.Code(err) != codes.NotFound {
				t.Errorf("%s fetched it: %v", p.Subject, err)
			}
		}
	})

	t.Run("a photo is fetched only through the issue that names it", func(t *testing.T) {
		other := e.mustUpload(taoyuanWorker, taoyuanWorker.Scope, "", evidencetest.JPEG(8, 8))
		if _, err := e.raiseWithPhotos(taoyuanWorker, "photo-2", other.GetId()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := evidence.Fetch(ctx, e.client(cityDesk), is.GetId(), other.GetId()); status.Code(err) != codes.NotFound {
			t.Fatalf("another issue's photo through this one: %v", err)
		}
	})
}

func TestPhotoRefusalsNameTheFieldAndWriteNothing(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	mine := e.mustUpload(taoyuanWorker, taoyuanWorker.Scope, "", evidencetest.JPEG(8, 8))
	theirs := e.mustUpload(hebinWorker, hebinWorker.Scope, "", evidencetest.JPEG(8, 8))
	forHebin := e.mustUpload(cityDesk, hebinWorker.Scope, "", evidencetest.PNG(8, 8))
	var seven []string
	for range 7 {
		seven = append(seven, e.mustUpload(taoyuanWorker, taoyuanWorker.Scope, "", evidencetest.PNG(4, 4)).GetId())
	}
	storedBefore, eventsBefore := e.stored(), e.streamMessages()

	tooBig := append(evidencetest.JPEG(8, 8), make([]byte, evidence.MaxPhotoBytes)...)
	for _, c := range []struct {
		name  string
		call  func() error
		code  codes.Code
		field string
	}{
		{"text called photo.jpg is not a photo", func() error {
			_, err := e.upload(taoyuanWorker, taoyuanWorker.Scope, "", []byte("photo.jpg: not really a JPEG at all"))
			return err
		}, codes.InvalidArgument, "chunk: not a JPEG, PNG or WebP"},
		{"a photo over the size limit", func() error {
			_, err := e.upload(taoyuanWorker, taoyuanWorker.Scope, "", tooBig)
			return err
		}, codes.InvalidArgument, "chunk: the photo is larger than"},
		{"an upload for nothing", func() error {
			_, err := e.upload(taoyuanWorker, "", "", evidencetest.JPEG(8, 8))
			return err
		}, codes.InvalidArgument, "grid_id"},
		{"an upload for a grid and an issue", func() error {
			_, err := e.upload(taoyuanWorker, taoyuanWorker.Scope, "K7M3-QX9A", evidencetest.JPEG(8, 8))
			return err
		}, codes.InvalidArgument, "issue_id"},
		{"an upload for a grid outside the caller's scope", func() error {
			_, err := e.upload(taoyuanWorker, hebinWorker.Scope, "", evidencetest.JPEG(8, 8))
			return err
		}, codes.PermissionDenied, "grid xinhua-hebin-01"},
		{"an upload for an issue that does not exist", func() error {
			_, err := e.upload(waterOfficer, "", "K7M3-QX9A", evidencetest.JPEG(8, 8))
			return err
		}, codes.NotFound, ""},
		{"a raise naming an unknown photo", func() error {
			_, err := e.raiseWithPhotos(taoyuanWorker, "r-unknown", mine.GetId(), "ph_AAAAAAAAAAAAAAAAAAAAAAAAAA")
			return err
		}, codes.InvalidArgument, "photo_ids[1]: no photo"},
		{"a raise naming too many photos", func() error {
			_, err := e.raiseWithPhotos(taoyuanWorker, "r-seven", seven...)
			return err
		}, codes.InvalidArgument, "photo_ids: at most 6 photos"},
		{"a raise naming someone else's photo", func() error {
			_, err := e.raiseWithPhotos(taoyuanWorker, "r-theirs", theirs.GetId())
			return err
		}, codes.InvalidArgument, "uploaded by someone else"},
		{"a raise naming a photo uploaded for another grid", func() error {
			_, err := e.client(cityDesk).RaiseIssue(ctx, &whistlev1.RaiseIssueRequest{
				GridId: taoyuanWorker.Scope, CategoryId: "blocked-drain", Text: "Overflowing", PhotoIds: []string{forHebin.GetId()},
			})
			return err
		}, codes.InvalidArgument, "uploaded for a raise in grid xinhua-hebin-01"},
		{"a raise naming a photo twice", func() error {
			_, err := e.raiseWithPhotos(taoyuanWorker, "r-twice", mine.GetId(), mine.GetId())
			return err
		}, codes.InvalidArgument, "named twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if status.Code(err) != c.code || !strings.Contains(status.Convert(err).Message(), c.field) {
				t.Fatalf("got %v, want %v naming %q", err, c.code, c.field)
			}
		})
	}
	if after := e.stored(); !slices.Equal(after, storedBefore) {
		t.Errorf("the bucket went from %v to %v", storedBefore, after)
	}
	if after := e.streamMessages(); after != eventsBefore {
		t.Errorf("the stream went from %d to %d events", eventsBefore, after)
	}
	// Nothing claimed by a refusal: the photo a refused raise named is still free for this one.
	if _, err := e.raiseWithPhotos(taoyuanWorker, "r-ok", mine.GetId()); err != nil {
		t.Fatalf("the photo a refused raise named: %v", err)
	}
	// Nor by a request id reused for another raise, refused once the case is found.
	first := e.raise(taoyuanWorker, "r-first").GetId()
	again := e.mustUpload(taoyuanWorker, taoyuanWorker.Scope, "", evidencetest.JPEG(8, 8))
	if _, err := e.raiseWithPhotos(taoyuanWorker, "r-first", again.GetId()); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a reused request id with a photo: %v", err)
	}
	if is, err := e.raiseWithPhotos(taoyuanWorker, "r-second", again.GetId()); err != nil || is.GetId() == first {
		t.Fatalf("the photo a refused reuse named, in a new raise: %v", err)
	}
}

func TestAnUploadCutOffHalfWayLeavesNothing(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := e.client(taoyuanWorker).UploadPhoto(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jpg := evidencetest.JPEG(640, 480)
	if err := stream.Send(&whistlev1.UploadPhotoRequest{GridId: taoyuanWorker.Scope, Chunk: jpg[:evidence.ChunkSize]}); err != nil {
		t.Fatal(err)
	}
	cancel() // the phone lost its signal
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.Canceled {
		t.Fatalf("the cut-off upload ended with %v", err)
	}
	whole := e.mustUpload(taoyuanWorker, taoyuanWorker.Scope, "", jpg)
	if got := e.stored(); !slices.Equal(got, []string{whole.GetId()}) {
		t.Fatalf("the bucket holds %v, want only the whole upload %s", got, whole.GetId())
	}
}

func TestTheSweepRemovesPhotosNoEventNamesAndKeepsTheNamedOnes(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	orphan := e.mustUpload(taoyuanWorker, taoyuanWorker.Scope, "", evidencetest.JPEG(8, 8))
	named := e.mustUpload(taoyuanWorker, taoyuanWorker.Scope, "", evidencetest.PNG(8, 8))
	is, err := e.raiseWithPhotos(taoyuanWorker, "sweep-1", named.GetId())
	if err != nil {
		t.Fatal(err)
	}
	// A raise that claimed its photo and died before its event was appended.
	claimed := e.mustUpload(taoyuanWorker, taoyuanWorker.Scope, "", evidencetest.PNG(4, 4))
	if _, err := e.photos().Claim(ctx, taoyuanWorker.Subject, evidence.Purpose{GridID: taoyuanWorker.Scope},
		casenum.FromKey("crashed/1"), "photo_ids", []string{claimed.GetId()}, 1); err != nil {
		t.Fatal(err)
	}

	t.Run("nothing is removed before its time", func(t *testing.T) {
		res, err := e.photos().Sweep(ctx, func(context.Context, string, string) (bool, error) { return false, nil })
		if err != nil || res.Removed != 0 || res.Kept != 3 {
			t.Fatalf("an early sweep: %+v, %v", res, err)
		}
	})

	e.Clock.Advance(evidence.PendingTTL)
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		e.Clock.Advance(evidence.SweepInterval) // the service's sweeper runs on the clock
		if got, want := e.stored(), []string{named.GetId()}; !slices.Equal(got, want) {
			return fmt.Errorf("the bucket holds %v, want %v", got, want)
		}
		return nil
	})
	e.Clock.Advance(10 * evidence.PendingTTL)
	res, err := e.photos().Sweep(ctx, func(context.Context, string, string) (bool, error) { return false, nil })
	if err != nil || res.Removed != 0 {
		t.Fatalf("a sweep long after: %+v, %v; the named photo must have been marked referenced", res, err)
	}
	if _, data, err := evidence.Fetch(ctx, e.client(taoyuanWorker), is.GetId(), named.GetId()); err != nil || digest(data) != named.GetDigest() {
		t.Fatalf("the named photo: %v", err)
	}
	if _, err := e.raiseWithPhotos(taoyuanWorker, "sweep-2", orphan.GetId()); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a raise naming a swept photo: %v", err)
	}
}

func TestAnOfficerUploadsForTheirOpenAssignmentOnlyAndTheViewKeepsPhotosThroughAReplay(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	raisePhoto := e.mustUpload(taoyuanWorker, taoyuanWorker.Scope, "", evidencetest.JPEG(16, 16))
	is, err := e.raiseWithPhotos(taoyuanWorker, "resolve-1", raisePhoto.GetId())
	if err != nil {
		t.Fatal(err)
	}
	id := is.GetId()
	if _, err := e.upload(waterOnDuty, "", id, evidencetest.JPEG(8, 8)); status.Code(err) != codes.NotFound {
		t.Fatalf("an officer not summoned uploaded for the issue: %v", err)
	}
	e.route(id)
	getWhen(t, e.client(cityDesk), id, func(r *whistlev1.GetIssueResponse) error {
		if len(r.GetIssue().GetAssignments()) != 2 {
			return fmt.Errorf("not routed yet")
		}
		return nil
	})
	if _, err := e.upload(taoyuanWorker, "", id, evidencetest.JPEG(8, 8)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the grid worker uploaded for a department's resolve: %v", err)
	}
	if _, err := e.upload(waterOfficer, "", id, evidencetest.JPEG(8, 8)); status.Code(err) != codes.PermissionDenied ||
		!strings.Contains(err.Error(), "not on its roster") {
		t.Fatalf("an officer of water whom its roster does not name uploaded for its resolve: %v", err)
	}
	ph := e.mustUpload(waterOnDuty, "", id, evidencetest.JPEGWithGPS(32, 32))
	// What the department does on a resolve naming it.
	photos, err := e.photos().Claim(ctx, waterOnDuty.Subject, evidence.Purpose{IssueID: id}, id, "photo_ids", []string{ph.GetId()}, evidence.MaxPhotosPerResolve)
	if err != nil {
		t.Fatal(err)
	}
	e.appendEvent(id, "acknowledged.water", person(waterOnDuty), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "water"}}
	})
	e.appendEvent(id, "resolved.water", person(waterOnDuty), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "water", Note: "Cleared", Photos: evidence.ToProto(photos)}}
	})
	before := getWhen(t, e.client(cityDesk), id, func(r *whistlev1.GetIssueResponse) error {
		if len(r.GetIssue().GetAssignments()[0].GetPhotos()) != 1 {
			return fmt.Errorf("water's photos not shown yet")
		}
		return nil
	})
	if s := before.GetTimeline()[len(before.GetTimeline())-1].GetSummary(); !strings.HasSuffix(s, "(1 photo)") {
		t.Fatalf("the resolution's entry reads %q", s)
	}
	if _, data, err := evidence.Fetch(ctx, e.client(taoyuanWorker), id, ph.GetId()); err != nil || digest(data) != ph.GetDigest() {
		t.Fatalf("the grid worker fetching the resolution's photo: %v", err)
	}

	e.stop()
	if err := platform.Reset(ctx, e.Deps, e.svc); err != nil {
		t.Fatal(err)
	}
	e.run()
	after := getWhen(t, e.client(cityDesk), id, func(r *whistlev1.GetIssueResponse) error {
		if len(r.GetTimeline()) != len(before.GetTimeline()) {
			return fmt.Errorf("%d of %d entries replayed", len(r.GetTimeline()), len(before.GetTimeline()))
		}
		return nil
	})
	if !proto.Equal(after, before) {
		t.Fatalf("after replay:\n%v\nbefore:\n%v", after, before)
	}
	for _, pid := range []string{raisePhoto.GetId(), ph.GetId()} {
		if _, _, err := evidence.Fetch(ctx, e.client(cityDesk), id, pid); err != nil {
			t.Errorf("photo %s after replay: %v", pid, err)
		}
	}
}

func TestAResolutionsPhotosStayFetchableAfterAFailedVerificationReopensThePart(t *testing.T) {
	e := start(t)
	ctx := t.Context()
	id := e.raise(taoyuanWorker, "reopen-photos").GetId()
	now := e.Clock.Now()
	policy := &whistlev1.SlaPolicy{ReportInWithin: durationpb.New(time.Hour), ResolveWithin: durationpb.New(24 * time.Hour)}
	e.appendEvent(id, "routed", service("routing"), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Routed{Routed: &whistlev1.IssueRouted{Dispatches: []*whistlev1.Dispatch{
			{DepartmentId: "water", Role: whistlev1.AssignmentRole_ASSIGNMENT_ROLE_LEAD, Policy: policy,
				ReportInBy: timestamppb.New(now.Add(time.Hour)), ResolveBy: timestamppb.New(now.Add(24 * time.Hour))},
		}}}
	})
	getWhen(t, e.client(waterOnDuty), id, func(*whistlev1.GetIssueResponse) error { return nil })
	ph := e.mustUpload(waterOnDuty, "", id, evidencetest.PNG(8, 8))
	photos, err := e.photos().Claim(ctx, waterOnDuty.Subject, evidence.Purpose{IssueID: id}, id, "photo_ids", []string{ph.GetId()}, evidence.MaxPhotosPerResolve)
	if err != nil {
		t.Fatal(err)
	}
	e.appendEvent(id, "ack", person(waterOnDuty), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Acknowledged{Acknowledged: &whistlev1.AssignmentAcknowledged{DepartmentId: "water"}}
	})
	e.appendEvent(id, "resolved", person(waterOnDuty), func(ev *whistlev1.Event) {
		ev.Payload = &whistlev1.Event_Resolved{Resolved: &whistlev1.AssignmentResolved{DepartmentId: "water", Note: "done", Photos: evidence.ToProto(photos)}}
	})
	e.waitStatus(taoyuanWorker, id, whistlev1.IssueStatus_ISSUE_STATUS_RESOLVED)
	failed, err := e.client(taoyuanWorker).VerifyIssue(ctx, &whistlev1.VerifyIssueRequest{IssueId: id, Reason: "still overflowing"})
	if err != nil {
		t.Fatal(err)
	}
	if lead := failed.GetIssue().GetAssignments()[0]; lead.GetReopened() != 1 || len(lead.GetPhotos()) != 0 {
		t.Fatalf("the reopened part: %v", lead)
	}
	if _, data, err := evidence.Fetch(ctx, e.client(taoyuanWorker), id, ph.GetId()); err != nil || digest(data) != ph.GetDigest() {
		t.Fatalf("the first resolution's photo after the reopening: %v", err)
	}
}
