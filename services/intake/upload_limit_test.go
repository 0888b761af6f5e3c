package intake_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/app"
	"github.com/whistle-dispatch/whistle/services/internal/evidence/evidencetest"
)

// endedUpload is the status the server ended the i-th upload with.
type endedUpload struct {
	i   int
	err error
}

func TestUploadsBeyondTheBoundAreRefusedUntilOneEnds(t *testing.T) {
	t.Parallel()
	e := start(t)
	photo := evidencetest.PNG(8, 8)
	// One upload more than the bound begins and stalls after its first bytes. Which of them the
	// server reaches last is the scheduler's choice, so the test does not guess: exactly one must be
	// refused, while the others each hold their place.
	var stops []context.CancelFunc
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	ended := make(chan endedUpload, app.MaxUploadsInFlight+1)
	for i := range app.MaxUploadsInFlight + 1 {
		ctx, cancel := context.WithCancel(context.Background())
		stops = append(stops, cancel)
		stream, err := e.client(taoyuanWorker).UploadPhoto(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&whistlev1.UploadPhotoRequest{GridId: taoyuanWorker.Scope, Chunk: photo[:4]}); err != nil {
			t.Fatal(err)
		}
		go func() { ended <- endedUpload{i, stream.RecvMsg(new(whistlev1.UploadPhotoResponse))} }()
	}
	var refused endedUpload
	select {
	case refused = <-ended:
	case <-time.After(10 * time.Second):
		t.Fatalf("none of %d uploads was refused", app.MaxUploadsInFlight+1)
	}
	if status.Code(refused.err) != codes.ResourceExhausted {
		t.Fatalf("an upload beyond the bound: %v; want ResourceExhausted", refused.err)
	}
	select {
	case other := <-ended:
		t.Fatalf("upload %d ended too, with %v: only the one beyond the bound may", other.i, other.err)
	default:
	}
	// One of the places held is given up: a whole upload is then stored.
	stops[(refused.i+1)%len(stops)]()
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		_, err := e.upload(taoyuanWorker, taoyuanWorker.Scope, "", photo)
		return err
	})
}
