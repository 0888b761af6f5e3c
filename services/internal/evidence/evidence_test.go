package evidence_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/evidence/evidencetest"
)

// open returns a store on a NATS of the test's own.
func open(t *testing.T, cfg evidence.Config) *evidence.Store {
	t.Helper()
	s, err := evidence.Open(t.Context(), natstest.Connect(t, natstest.RunServer(t)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// get reads a photo's bytes back.
func get(t *testing.T, s *evidence.Store, id string) []byte {
	t.Helper()
	_, r, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestACityThatKeepsMetadataStoresPhotosAsUploaded(t *testing.T) {
	t.Parallel()
	jpg := evidencetest.JPEGWithGPS(64, 64)
	for _, keep := range []bool{false, true} {
		s := open(t, evidence.Config{KeepMetadata: keep})
		ph, err := s.Put(t.Context(), "wang", evidence.Purpose{GridID: "g"}, jpg)
		if err != nil {
			t.Fatal(err)
		}
		data := get(t, s, ph.ID)
		if kept := bytes.Equal(data, jpg); kept != keep {
			t.Errorf("keep %v: stored the upload as it was: %v", keep, kept)
		}
		if int64(len(data)) != ph.Size {
			t.Errorf("keep %v: size %d, stored %d bytes", keep, ph.Size, len(data))
		}
	}
}

func TestAPhotoAboutToExpireCannotBeClaimedAndAClaimHoldsItForItsCaseAlone(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC))
	s := open(t, evidence.Config{Clock: clk})
	ctx := context.Background()
	purpose := evidence.Purpose{GridID: "g"}
	early, err := s.Put(ctx, "wang", purpose, evidencetest.PNG(4, 4))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(evidence.PendingTTL - evidence.ClaimGrace)
	if _, err := s.Claim(ctx, "wang", purpose, "AAAA-AAAA", "photo_ids", []string{early.ID}, 1); err == nil || !strings.Contains(err.Error(), "about to be removed") {
		t.Fatalf("claiming a photo within the grace of its removal: %v", err)
	}
	fresh, err := s.Put(ctx, "wang", purpose, evidencetest.PNG(4, 4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "wang", purpose, "AAAA-AAAA", "photo_ids", []string{fresh.ID}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "wang", purpose, "AAAA-AAAA", "photo_ids", []string{fresh.ID}, 1); err != nil {
		t.Fatalf("a retry of the same claim: %v", err)
	}
	if _, err := s.Claim(ctx, "wang", purpose, "BBBB-BBBB", "photo_ids", []string{fresh.ID}, 1); err == nil || !strings.Contains(err.Error(), "belongs to case AAAA-AAAA") {
		t.Fatalf("a second case claiming the photo: %v", err)
	}
}

func TestTheBucketIsCreatedWithTheReplicasAskedAndNeverChangedOnceItExists(t *testing.T) {
	t.Parallel()
	servers := natstest.RunCluster(t, 3)
	nc := natstest.Connect(t, servers[0])
	if _, err := evidence.Open(t.Context(), nc, evidence.Config{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.Open(t.Context(), nc, evidence.Config{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), "OBJ_"+evidence.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("the bucket has %d replicas after a start with 1; want the 3 it was created with", r)
	}
}
