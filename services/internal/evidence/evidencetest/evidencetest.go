// Package evidencetest makes test photos in code: JPEGs and PNGs from Go's encoders, with
// metadata written by hand where a test needs some to strip, and a minimal WebP container.
package evidencetest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

// GPSMarker is a string inside the EXIF block of JPEGWithGPS (its GPS IFD's latitude
// reference and the camera's make), which no stripped photo may still contain.
const GPSMarker = "WhistleCam"

// picture is a small image with some structure, so that encoders produce real scans.
func picture(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 7), uint8(y * 5), uint8(x ^ y), 255})
		}
	}
	return img
}

// JPEG is a plain JPEG of w×h pixels.
func JPEG(w, h int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, picture(w, h), &jpeg.Options{Quality: 80}); err != nil {
		panic(err) // encoding into memory cannot fail
	}
	return buf.Bytes()
}

// PNG is a plain PNG of w×h pixels.
func PNG(w, h int) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, picture(w, h)); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// ExifGPS is an APP1 EXIF segment, written by hand: a little-endian TIFF header, IFD0 with the
// camera's make (GPSMarker) and a pointer to a GPS IFD holding latitude 22°44'N and longitude
// 110°18'E.
func ExifGPS() []byte {
	le := binary.LittleEndian
	var t bytes.Buffer
	t.WriteString("II")
	_ = binary.Write(&t, le, uint16(42))
	_ = binary.Write(&t, le, uint32(8)) // IFD0 at 8
	// IFD0: 2 entries (Make, GPSInfo) = 2 + 2*12 + 4 = 30 bytes, at 8..38; data after.
	makeOff := uint32(38)
	makeStr := GPSMarker + "\x00"
	gpsOff := makeOff + uint32(len(makeStr))
	entry := func(tag, typ uint16, count, value uint32) {
		_ = binary.Write(&t, le, tag)
		_ = binary.Write(&t, le, typ)
		_ = binary.Write(&t, le, count)
		_ = binary.Write(&t, le, value)
	}
	_ = binary.Write(&t, le, uint16(2))
	entry(0x010F, 2, uint32(len(makeStr)), makeOff) // Make, ASCII
	entry(0x8825, 4, 1, gpsOff)                     // GPSInfo IFD pointer
	_ = binary.Write(&t, le, uint32(0))
	t.WriteString(makeStr)
	// GPS IFD: 4 entries = 2 + 48 + 4 = 54 bytes; rationals after.
	ratOff := gpsOff + 54
	_ = binary.Write(&t, le, uint16(4))
	entry(0x0001, 2, 2, uint32('N')) // GPSLatitudeRef "N"
	entry(0x0002, 5, 3, ratOff)      // GPSLatitude
	entry(0x0003, 2, 2, uint32('E')) // GPSLongitudeRef "E"
	entry(0x0004, 5, 3, ratOff+24)   // GPSLongitude
	_ = binary.Write(&t, le, uint32(0))
	for _, v := range []uint32{22, 1, 44, 1, 0, 1, 110, 1, 18, 1, 0, 1} {
		_ = binary.Write(&t, le, v)
	}
	payload := append([]byte("Exif\x00\x00"), t.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

// XMP is an APP1 XMP segment naming a place.
func XMP() []byte {
	payload := []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><exif:GPSLatitude>22,44N</exif:GPSLatitude><tiff:Make>" + GPSMarker + "</tiff:Make></x:xmpmeta>")
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

// JPEGWithGPS is a JPEG of w×h pixels with ExifGPS and XMP inserted after its SOI marker, as
// a phone's camera writes them.
func JPEGWithGPS(w, h int) []byte {
	plain := JPEG(w, h)
	out := append([]byte{}, plain[:2]...)
	out = append(out, ExifGPS()...)
	out = append(out, XMP()...)
	return append(out, plain[2:]...)
}

// pngChunk is one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// PNGWithText is a PNG of w×h pixels with a tEXt chunk and an eXIf chunk (holding ExifGPS's
// TIFF data) after its IHDR.
func PNGWithText(w, h int) []byte {
	plain := PNG(w, h)
	ihdrEnd := 8 + 12 + 13
	out := append([]byte{}, plain[:ihdrEnd]...)
	out = append(out, pngChunk("tEXt", []byte("Location\x00Taoyuan, "+GPSMarker))...)
	out = append(out, pngChunk("eXIf", ExifGPS()[10:])...)
	return append(out, plain[ihdrEnd:]...)
}

// WebPWithEXIF is a minimal extended WebP container: VP8X declaring EXIF and XMP, a VP8L chunk
// with a few bytes standing for the image (the container is all that is checked), and EXIF and
// XMP chunks.
func WebPWithEXIF() []byte {
	chunk := func(typ string, data []byte) []byte {
		out := append([]byte(typ), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
		out = append(out, data...)
		if len(data)%2 == 1 {
			out = append(out, 0)
		}
		return out
	}
	vp8x := make([]byte, 10)
	vp8x[0] = 0x08 | 0x04 // EXIF and XMP present
	var body []byte
	body = append(body, "WEBP"...)
	body = append(body, chunk("VP8X", vp8x)...)
	body = append(body, chunk("VP8L", []byte{0x2F, 0, 0, 0, 0x10, 0x07, 0x10, 0x11, 0x11})...)
	body = append(body, chunk("EXIF", ExifGPS()[10:])...)
	body = append(body, chunk("XMP ", []byte("<x:xmpmeta>"+GPSMarker+"</x:xmpmeta>"))...)
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	return append(out, body...)
}
