package console

import (
	"fmt"
	"io"
	"mime/multipart"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// photoChunk is how much of a photo one UploadPhoto message carries.
const photoChunk = 64 << 10

// maxPhotoForm bounds a form that carries photos: as many as a raise or a resolve may name, each
// at its largest, and room for the other fields.
const maxPhotoForm = evidence.MaxPhotosPerRaise*evidence.MaxPhotoBytes + 1<<20

// uploadPhotos stores each photo a form carried with intake's UploadPhoto, for a raise in gridID
// or a resolve of issueID, and returns their ids in the form's order. Intake checks each photo's
// type and size and answers a refusal naming it.
func (c *Console) uploadPhotos(q *request, gridID, issueID string, files []*multipart.FileHeader) ([]string, error) {
	ids := make([]string, 0, len(files))
	for _, fh := range files {
		id, err := c.uploadPhoto(q, gridID, issueID, fh)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (c *Console) uploadPhoto(q *request, gridID, issueID string, fh *multipart.FileHeader) (string, error) {
	f, err := fh.Open()
	if err != nil {
		return "", fmt.Errorf("console: open the photo %s: %w", fh.Filename, err)
	}
	defer f.Close()
	stream, err := whistlev1.NewIntakeServiceClient(c.cfg.Conn).UploadPhoto(q.r.Context(), q.call())
	if err != nil {
		return "", err
	}
	first := true
	buf := make([]byte, photoChunk)
	for {
		n, err := f.Read(buf)
		if n > 0 || first {
			msg := &whistlev1.UploadPhotoRequest{Chunk: buf[:n]}
			if first {
				msg.GridId, msg.IssueId, first = gridID, issueID, false
			}
			if err := stream.Send(msg); err != nil {
				break // the server ended the stream; CloseAndRecv says why
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("console: read the photo %s: %w", fh.Filename, err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return "", err
	}
	return resp.GetPhoto().GetId(), nil
}
