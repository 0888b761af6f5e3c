package console

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// maxPhotoForm bounds a form that carries photos: as many as a raise or a resolve may name, each
// at its largest, and room for the other fields.
const maxPhotoForm = evidence.MaxPhotosPerRaise*evidence.MaxPhotoBytes + 1<<20

// uploadPhotos stores each photo a form carried with intake's UploadPhoto, for a raise in gridID
// or a resolve of issueID, and returns their ids in the form's order.
func (c *Console) uploadPhotos(q *request, gridID, issueID string, files []*multipart.FileHeader) ([]string, error) {
	ids := make([]string, 0, len(files))
	for _, fh := range files {
		data, err := readPhoto(fh)
		if err != nil {
			return nil, err
		}
		id, err := c.uploadPhoto(q, gridID, issueID, data)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// readPhoto reads a photo of a form, one byte past the largest a photo may be, so that intake
// refuses one too large by name rather than the console cutting it short.
func readPhoto(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, fmt.Errorf("console: open the photo %s: %w", fh.Filename, err)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, evidence.MaxPhotoBytes+1))
}

// uploadPhoto streams a photo to intake's UploadPhoto, for a raise in gridID or a resolve of
// issueID (which the first chunk names), and returns the stored photo's id. Intake checks its
// type and size and answers a refusal naming what is wrong.
func (c *Console) uploadPhoto(q *request, gridID, issueID string, data []byte) (string, error) {
	stream, err := whistlev1.NewIntakeServiceClient(c.cfg.Conn).UploadPhoto(q.r.Context(), q.call())
	if err != nil {
		return "", err
	}
	for first := true; first || len(data) > 0; first = false {
		n := min(len(data), evidence.ChunkSize)
		m := &whistlev1.UploadPhotoRequest{Chunk: data[:n]}
		if first {
			m.GridId, m.IssueId = gridID, issueID
		}
		data = data[n:]
		if err := stream.Send(m); err != nil {
			if errors.Is(err, io.EOF) {
				break // the service answered early: CloseAndRecv says why
			}
			return "", err
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return "", err
	}
	return resp.GetPhoto().GetId(), nil
}
