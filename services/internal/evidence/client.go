package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// Upload sends a photo to IntakeService.UploadPhoto in chunks of ChunkSize, for a raise in
// gridID or a resolve of issueID, and returns the photo stored.
func Upload(ctx context.Context, c whistlev1.IntakeServiceClient, gridID, issueID string, data []byte) (*whistlev1.Photo, error) {
	stream, err := c.UploadPhoto(ctx)
	if err != nil {
		return nil, err
	}
	first := true
	for len(data) > 0 || first {
		n := min(len(data), ChunkSize)
		m := &whistlev1.UploadPhotoRequest{Chunk: data[:n]}
		if first {
			m.GridId, m.IssueId = gridID, issueID
			first = false
		}
		data = data[n:]
		if err := stream.Send(m); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server answered early: CloseAndRecv says why
			}
			return nil, err
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	return resp.GetPhoto(), nil
}

// Fetch reads a photo of an issue from IntakeService.GetPhoto: what it is, and its bytes.
func Fetch(ctx context.Context, c whistlev1.IntakeServiceClient, issueID, photoID string) (*whistlev1.Photo, []byte, error) {
	stream, err := c.GetPhoto(ctx, &whistlev1.GetPhotoRequest{IssueId: issueID, PhotoId: photoID})
	if err != nil {
		return nil, nil, err
	}
	var photo *whistlev1.Photo
	var buf bytes.Buffer
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if photo == nil {
			if photo = m.GetPhoto(); photo == nil {
				return nil, nil, errors.New("the first message does not describe the photo")
			}
		}
		buf.Write(m.GetChunk())
	}
	if photo == nil {
		return nil, nil, errors.New("no photo was sent")
	}
	if int64(buf.Len()) != photo.GetSize() {
		return nil, nil, fmt.Errorf("received %d bytes of a photo of %d", buf.Len(), photo.GetSize())
	}
	return photo, buf.Bytes(), nil
}
