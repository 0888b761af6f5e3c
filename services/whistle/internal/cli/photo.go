package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// uploadPhotos uploads each file, for a raise in gridID or a resolve of issueID, and returns the
// ids of the photos stored, in order. A file too big is refused before a byte is sent.
func uploadPhotos(ctx context.Context, c *client, gridID, issueID string, files []string) ([]string, error) {
	var ids []string
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, invalid("--photo %s: %v", f, err)
		}
		if st.Size() > evidence.MaxPhotoBytes {
			return nil, invalid("--photo %s: %d bytes, more than the %d a photo may have", f, st.Size(), evidence.MaxPhotoBytes)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, invalid("--photo %s: %v", f, err)
		}
		uctx, cancel := unary(ctx)
		ph, err := evidence.Upload(uctx, c.intake, gridID, issueID, data)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("--photo %s: %w", f, err)
		}
		fmt.Fprintf(c.errOut, "Uploaded %s as %s (%s, %d bytes)\n", f, ph.GetId(), ph.GetContentType(), ph.GetSize())
		ids = append(ids, ph.GetId())
	}
	return ids, nil
}

// photoFlag binds the repeatable --photo.
func photoFlag(cmd *cobra.Command, files *[]string, what string) {
	cmd.Flags().StringArrayVar(files, "photo", nil, fmt.Sprintf("a JPEG, PNG or WebP `FILE` of %s, uploaded first (repeat for more, up to %d; at most %d MB each)",
		what, evidence.MaxPhotosPerRaise, evidence.MaxPhotoBytes>>20))
}

// photoCommand groups the photo commands.
func photoCommand(cfg *config) *cobra.Command {
	cmd := &cobra.Command{Use: "photo", Short: "Fetch the photos of an issue"}
	cmd.AddCommand(photoGetCommand(cfg))
	return cmd
}

// photoGetCommand saves a photo of an issue.
func photoGetCommand(cfg *config) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "get CASE PHOTO_ID",
		Short: "Save a photo of an issue (see whistle show for their ids)",
		Args:  cobra.ExactArgs(2),
		RunE: cfg.run(func(ctx context.Context, c *client, args []string) error {
			ctx, cancel := unary(ctx)
			defer cancel()
			ph, data, err := evidence.Fetch(ctx, c.intake, args[0], args[1])
			if err != nil {
				return err
			}
			if out == "-" {
				_, err := c.out.Write(data)
				return err
			}
			if out == "" {
				out = ph.GetId() + extension(ph.GetContentType())
			}
			if err := os.WriteFile(out, data, 0o644); err != nil {
				return err
			}
			if c.json {
				return printJSON(c.out, ph)
			}
			_, err = fmt.Fprintf(c.out, "Saved %s to %s (%s, %d bytes, %s)\n", ph.GetId(), out, ph.GetContentType(), ph.GetSize(), ph.GetDigest())
			return err
		}),
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the `FILE` to write; - for standard output; default PHOTO_ID with the type's extension")
	return cmd
}

// extension is a file name's extension for a photo's content type.
func extension(contentType string) string {
	switch contentType {
	case evidence.JPEG:
		return ".jpg"
	case evidence.PNG:
		return ".png"
	case evidence.WebP:
		return ".webp"
	}
	return ""
}

// photoList writes photos for people: their ids with type and size.
func photoList(ps []*whistlev1.Photo) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s (%s, %d bytes)", p.GetId(), strings.TrimPrefix(p.GetContentType(), "image/"), p.GetSize()))
	}
	return strings.Join(parts, ", ")
}
