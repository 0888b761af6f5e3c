package evidence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The content types a photo may have, found in its bytes.
const (
	JPEG = "image/jpeg"
	PNG  = "image/png"
	WebP = "image/webp"
)

// ErrNotAnImage means the bytes are none of the accepted types, whatever the file was called.
var ErrNotAnImage = errors.New("not a JPEG, PNG or WebP image")

var (
	jpegMagic = []byte{0xFF, 0xD8, 0xFF}
	pngMagic  = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}
)

// Sniff returns the content type of an image by its first bytes (its magic number), never by a
// name: a text file called photo.jpg is not a JPEG.
func Sniff(data []byte) (string, error) {
	switch {
	case bytes.HasPrefix(data, jpegMagic):
		return JPEG, nil
	case bytes.HasPrefix(data, pngMagic):
		return PNG, nil
	case len(data) >= 12 && string(data[0:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return WebP, nil
	}
	return "", ErrNotAnImage
}

// Clean checks that data is a well-formed image of its type, as far as its container goes
// (segments, chunks and their lengths), and returns it with the metadata that may say where and
// when it was taken removed when strip is set: a JPEG's APP1 segments (EXIF and XMP) and APP13
// (IPTC), a PNG's text chunks (tEXt, zTXt, iTXt) and eXIf, a WebP's EXIF and XMP chunks (with
// VP8X's flags for them cleared). The pixels are never decoded or re-encoded, so the image is
// the same one, byte for byte, less those parts. Without strip data is returned as it is, once
// checked.
func Clean(data []byte, strip bool) (contentType string, out []byte, err error) {
	ct, err := Sniff(data)
	if err != nil {
		return "", nil, err
	}
	switch ct {
	case JPEG:
		out, err = cleanJPEG(data)
	case PNG:
		out, err = cleanPNG(data)
	default:
		out, err = cleanWebP(data)
	}
	if err != nil {
		return "", nil, fmt.Errorf("a broken %s: %w", ct, err)
	}
	if !strip {
		out = data
	}
	return ct, out, nil
}

// cleanJPEG walks a JPEG's segments up to its first scan and copies all but the metadata ones;
// the scans and what follows are copied as they are (metadata never follows the first scan in
// any camera's or editor's output, and the entropy-coded data cannot be walked by length).
func cleanJPEG(data []byte) ([]byte, error) {
	out := make([]byte, 0, len(data))
	out = append(out, 0xFF, 0xD8)
	i, frame := 2, false
	for {
		// Markers may be preceded by any number of 0xFF fill bytes.
		if i >= len(data) || data[i] != 0xFF {
			return nil, fmt.Errorf("no marker at byte %d", i)
		}
		for i < len(data) && data[i] == 0xFF {
			i++
		}
		if i >= len(data) {
			return nil, errors.New("ends inside a marker")
		}
		marker := data[i]
		i++
		switch {
		case marker == 0xD9: // EOI before any scan
			return nil, errors.New("no image data")
		case marker == 0x01 || marker >= 0xD0 && marker <= 0xD7: // no length
			out = append(out, 0xFF, marker)
			continue
		}
		if i+2 > len(data) {
			return nil, errors.New("ends inside a segment length")
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		if n < 2 || i+n > len(data) {
			return nil, fmt.Errorf("segment 0x%02X at byte %d runs past the end", marker, i-2)
		}
		seg := data[i-2 : i+n]
		if marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC {
			frame = true
		}
		if marker == 0xDA { // start of scan: the rest is image data
			if !frame {
				return nil, errors.New("a scan before any frame header")
			}
			return append(out, data[i-2:]...), nil
		}
		if marker != 0xE1 && marker != 0xED { // APP1: EXIF, XMP; APP13: IPTC
			out = append(out, seg...)
		}
		i += n
	}
}

// pngDropped are the chunks that carry text or EXIF, which may hold a place, a time or a name.
var pngDropped = map[string]bool{"tEXt": true, "zTXt": true, "iTXt": true, "eXIf": true}

// cleanPNG walks a PNG's chunks, checking each one's CRC, from IHDR to IEND, and copies all but
// the text and EXIF ones; anything after IEND is dropped.
func cleanPNG(data []byte) ([]byte, error) {
	out := make([]byte, 0, len(data))
	out = append(out, pngMagic...)
	i := len(pngMagic)
	for first := true; ; first = false {
		if i+8 > len(data) {
			return nil, errors.New("ends before IEND")
		}
		n := int(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		if n > len(data) || i+12+n > len(data) {
			return nil, fmt.Errorf("chunk %q at byte %d runs past the end", typ, i)
		}
		if crc32.ChecksumIEEE(data[i+4:i+8+n]) != binary.BigEndian.Uint32(data[i+8+n:]) {
			return nil, fmt.Errorf("chunk %q at byte %d fails its CRC", typ, i)
		}
		if first && typ != "IHDR" {
			return nil, errors.New("the first chunk is not IHDR")
		}
		if !pngDropped[typ] {
			out = append(out, data[i:i+12+n]...)
		}
		i += 12 + n
		if typ == "IEND" {
			return out, nil
		}
	}
}

// VP8X flags for the metadata chunks a WebP declares.
const (
	webpFlagEXIF = 0x08
	webpFlagXMP  = 0x04
)

// cleanWebP walks a WebP's RIFF chunks and copies all but EXIF and XMP, clearing VP8X's flags
// for them, and sets the RIFF size to what is left.
func cleanWebP(data []byte) ([]byte, error) {
	size := int(binary.LittleEndian.Uint32(data[4:8]))
	if size < 4 || size+8 > len(data) {
		return nil, fmt.Errorf("RIFF size %d does not fit the %d bytes", size, len(data))
	}
	data = data[:size+8] // anything after the RIFF is not the image
	out := make([]byte, 12, len(data))
	copy(out, data[:12])
	image := false
	for i := 12; i < len(data); {
		if i+8 > len(data) {
			return nil, fmt.Errorf("ends inside a chunk header at byte %d", i)
		}
		typ := string(data[i : i+4])
		n := int(binary.LittleEndian.Uint32(data[i+4:]))
		padded := n + n&1
		if n > len(data) || i+8+n > len(data) {
			return nil, fmt.Errorf("chunk %q at byte %d runs past the end", typ, i)
		}
		end := min(i+8+padded, len(data))
		switch typ {
		case "EXIF", "XMP ":
		case "VP8X":
			if n < 10 {
				return nil, errors.New("VP8X is too short")
			}
			start := len(out)
			out = append(out, data[i:end]...)
			out[start+8] &^= webpFlagEXIF | webpFlagXMP
		default:
			if typ == "VP8 " || typ == "VP8L" || typ == "ANIM" {
				image = true
			}
			out = append(out, data[i:end]...)
		}
		i = end
	}
	if !image {
		return nil, errors.New("no VP8, VP8L or ANIM chunk")
	}
	binary.LittleEndian.PutUint32(out[4:8], uint32(len(out)-8))
	return out, nil
}
