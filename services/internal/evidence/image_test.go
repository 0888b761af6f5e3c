package evidence_test

import (
	"bytes"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"strings"
	"testing"

	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/internal/evidence/evidencetest"
)

func TestPhotosAreRecognisedByTheirBytesAndStrippedOfWhereTheyWereTaken(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, want string
		data       []byte
		decodes    bool // Go's decoders read it, before and after
	}{
		{"a JPEG with EXIF GPS and XMP", evidence.JPEG, evidencetest.JPEGWithGPS(32, 24), true},
		{"a PNG with text and eXIf chunks", evidence.PNG, evidencetest.PNGWithText(32, 24), true},
		{"a WebP with EXIF and XMP chunks", evidence.WebP, evidencetest.WebPWithEXIF(), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if !bytes.Contains(c.data, []byte(evidencetest.GPSMarker)) {
				t.Fatal("the test image carries no metadata to strip")
			}
			ct, out, err := evidence.Clean(c.data, true)
			if err != nil || ct != c.want {
				t.Fatalf("Clean = %q, %v; want %q", ct, err, c.want)
			}
			if bytes.Contains(out, []byte(evidencetest.GPSMarker)) || bytes.Contains(out, []byte("Exif\x00")) {
				t.Error("the metadata is still there")
			}
			if len(out) >= len(c.data) {
				t.Errorf("stripped %d bytes to %d", len(c.data), len(out))
			}
			if c.decodes {
				a, _, err := image.Decode(bytes.NewReader(c.data))
				if err != nil {
					t.Fatal(err)
				}
				b, _, err := image.Decode(bytes.NewReader(out))
				if err != nil {
					t.Fatalf("the stripped image no longer decodes: %v", err)
				}
				if a.Bounds() != b.Bounds() {
					t.Errorf("bounds %v became %v", a.Bounds(), b.Bounds())
				}
			}
			if c.want == evidence.WebP && out[20]&0x0C != 0 {
				t.Errorf("VP8X still declares EXIF or XMP: flags %08b", out[20])
			}
			// Kept as uploaded when the city keeps metadata.
			if _, kept, err := evidence.Clean(c.data, false); err != nil || !bytes.Equal(kept, c.data) {
				t.Errorf("keeping metadata changed the bytes (err %v)", err)
			}
			// A stripped image is stripped again to itself.
			if _, again, err := evidence.Clean(out, true); err != nil || !bytes.Equal(again, out) {
				t.Errorf("stripping twice changed the bytes (err %v)", err)
			}
		})
	}
}

func TestWhatIsNotAWellFormedImageIsRefusedWhateverItIsCalled(t *testing.T) {
	t.Parallel()
	jpg := evidencetest.JPEG(16, 16)
	pngData := evidencetest.PNG(16, 16)
	corrupt := bytes.Clone(pngData)
	corrupt[20] ^= 0xFF // inside IHDR: its CRC fails
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"text", []byte("this is not a photo, though it is called photo.jpg"), "not a JPEG, PNG or WebP"},
		{"a GIF", []byte("GIF89a\x01\x00\x01\x00"), "not a JPEG, PNG or WebP"},
		{"a JPEG cut before its scan", jpg[:40], "broken image/jpeg"},
		{"a JPEG's magic and nothing else", []byte{0xFF, 0xD8, 0xFF}, "broken image/jpeg"},
		{"a PNG cut short", pngData[:len(pngData)-20], "broken image/png"},
		{"a PNG with a bad CRC", corrupt, "fails its CRC"},
		{"a RIFF that is not all there", append([]byte("RIFF\xff\x00\x00\x00WEBP"), make([]byte, 8)...), "broken image/webp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := evidence.Clean(c.data, true); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Clean = %v, want an error saying %q", err, c.want)
			}
		})
	}
}
