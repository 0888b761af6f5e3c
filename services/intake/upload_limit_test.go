package intake_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/intake/internal/app"
	"github.com/whistle-dispatch/whistle/services/internal/evidence/evidencetest"
)

func TestUploadsBeyondTheBoundAreRefusedUntilOneEnds(t *testing.T) {
	t.Parallel()
	e := start(t)
	photo := evidencetest.PNG(8, 8)
	// MaxUploadsInFlight uploads begin and stall, each holding its place.
	var stops []context.CancelFunc
	for range app.MaxUploadsInFlight {
		ctx, cancel := context.WithCancel(context.Background())
		stops = append(stops, cancel)
		stream, err := e.client(taoyuanWorker).UploadPhoto(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&whistlev1.UploadPhotoRequest{GridId: taoyuanWorker.Scope, Chunk: photo[:4]}); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		_, err := e.upload(taoyuanWorker, taoyuanWorker.Scope, "", photo)
		if status.Code(err) != codes.ResourceExhausted {
			return fmt.Errorf("an upload beyond the bound: %v; want ResourceExhausted", err)
		}
		return nil
	})
	stops[0]()
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		_, err := e.upload(taoyuanWorker, taoyuanWorker.Scope, "", photo)
		return err
	})
}
