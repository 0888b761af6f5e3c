package department

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/evidence/evidencetest"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
)

// photos opens the photo bucket, as intake's uploads write it.
func (h *harness) photos() *evidence.Store {
	h.T.Helper()
	s, err := evidence.Open(h.T.Context(), h.Deps.NATS, evidence.Config{Clock: h.Clock})
	if err != nil {
		h.T.Fatal(err)
	}
	return s
}

// uploaded stores a photo as intake does when p uploads it for a resolve of issue.
func (h *harness) uploaded(p authx.Principal, issue string) evidence.Photo {
	h.T.Helper()
	ph, err := h.photos().Put(h.T.Context(), p.Subject, evidence.Purpose{IssueID: issue}, evidencetest.JPEGWithGPS(16, 16))
	if err != nil {
		h.T.Fatal(err)
	}
	return ph
}

func TestAResolveCarriesItsPhotosIntoTheEventAndTheInbox(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	water := officer("water", 1)
	id := h.dispatch("photo-resolve", "xinhua-taoyuan-01", "water")
	c := h.client(water)
	if _, err := c.Acknowledge(ctx, &whistlev1.AcknowledgeRequest{IssueId: id}); err != nil {
		t.Fatal(err)
	}
	a, b := h.uploaded(water, id), h.uploaded(water, id)
	resp, err := c.Resolve(ctx, &whistlev1.ResolveRequest{IssueId: id, Note: "Cleared", PhotoIds: []string{a.ID, b.ID}})
	if err != nil {
		t.Fatal(err)
	}
	want := evidence.ToProto([]evidence.Photo{a, b})
	if got := resp.GetAssignment().GetPhotos(); len(got) != 2 || !proto.Equal(got[0], want[0]) || !proto.Equal(got[1], want[1]) {
		t.Fatalf("the resolved assignment's photos: %v", got)
	}
	ev := h.events(id, "resolved")
	if len(ev) != 1 || len(ev[0].GetResolved().GetPhotos()) != 2 || !proto.Equal(ev[0].GetResolved().GetPhotos()[1], want[1]) {
		t.Fatalf("resolved events: %v", ev)
	}
	items := inbox(t, c, &whistlev1.ListInboxRequest{Status: whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED})
	if len(items) != 1 || len(items[0].GetAssignment().GetPhotos()) != 2 {
		t.Fatalf("the inbox: %v", items)
	}

	// A wiped Redis replays to the same inbox, photos and all.
	h.stop()
	if err := platform.Reset(ctx, h.Deps, h.svc); err != nil {
		t.Fatal(err)
	}
	h.stop = h.Run(h.svc)
	h.Settled(Name)
	again := inbox(t, c, &whistlev1.ListInboxRequest{Status: whistlev1.AssignmentStatus_ASSIGNMENT_STATUS_RESOLVED})
	if len(again) != 1 || !proto.Equal(again[0].GetAssignment(), items[0].GetAssignment()) {
		t.Fatalf("after replay the inbox is %v, was %v", again, items)
	}
}

func TestAResolveNamingPhotosItMayNotUseIsRefusedAndWritesNothing(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	water, water2 := officer("water", 1), officer("water", 2)
	id := h.dispatch("photo-refused", "xinhua-taoyuan-01", "water")
	other := h.dispatch("photo-other", "xinhua-taoyuan-01", "water")
	c := h.client(water)
	if _, err := c.Acknowledge(ctx, &whistlev1.AcknowledgeRequest{IssueId: id}); err != nil {
		t.Fatal(err)
	}
	var seven []string
	for range 7 {
		seven = append(seven, h.uploaded(water, id).ID)
	}
	colleagues := h.uploaded(water2, id)
	forOther := h.uploaded(water, other)
	before := len(h.events(id, "resolved"))
	for _, c2 := range []struct {
		name string
		ids  []string
		want string
	}{
		{"an unknown photo", []string{"ph_AAAAAAAAAAAAAAAAAAAAAAAAAA"}, "photo_ids[0]: no photo"},
		{"a malformed id", []string{"../etc/passwd"}, "photo_ids[0]: no photo"},
		{"too many photos", seven, "photo_ids: at most 6 photos"},
		{"someone else's photo", []string{colleagues.ID}, "photo_ids[0]: photo " + `"` + colleagues.ID + `" was uploaded by someone else`},
		{"a photo uploaded for another issue", []string{forOther.ID}, "was uploaded for issue " + other},
	} {
		t.Run(c2.name, func(t *testing.T) {
			_, err := c.Resolve(ctx, &whistlev1.ResolveRequest{IssueId: id, Note: "Cleared", PhotoIds: c2.ids})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), c2.want) {
				t.Fatalf("got %v, want InvalidArgument saying %q", err, c2.want)
			}
		})
	}
	if after := len(h.events(id, "resolved")); after != before {
		t.Fatalf("refused resolves appended %d events", after-before)
	}
	// The refusals claimed nothing: the officer resolves with six of the seven photos.
	if _, err := c.Resolve(ctx, &whistlev1.ResolveRequest{IssueId: id, Note: "Cleared", PhotoIds: seven[:6]}); err != nil {
		t.Fatal(err)
	}
	if got := h.events(id, "resolved")[0].GetResolved().GetPhotos(); len(got) != 6 || !slices.Equal(evidence.IDs(evidence.FromProto(got)), seven[:6]) {
		t.Fatalf("resolved with %v", got)
	}
}
