package console

import (
	"bytes"
	"image"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// gridKey finds the catalog keys the grid worker's Go code names whole: T("grid.…") or
// T("grid.…", …).
var gridKey = regexp.MustCompile(`T\("(grid\.[a-z0-9_.-]+)"[,)]`)

func TestEveryMessageTheGridWorkersPagesNameIsInEveryCatalog(t *testing.T) {
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	files, err := filepath.Glob("gridworker*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no grid worker's files: %v", err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range gridKey.FindAllSubmatch(b, -1) {
			keys = append(keys, string(m[1]))
		}
	}
	if len(keys) < 10 {
		t.Fatalf("found only %d keys in %v; the pattern no longer matches the code", len(keys), files)
	}
	// The keys the code builds: each part's role, each score.
	for _, r := range whistlev1.AssignmentRole_name {
		keys = append(keys, "grid.part."+strings.ToLower(strings.TrimPrefix(r, "ASSIGNMENT_ROLE_")))
	}
	for s := 1; s <= 5; s++ {
		keys = append(keys, "grid.rate.score_"+strconv.Itoa(s))
	}
	for _, u := range gridUrgencies {
		keys = append(keys, "urgency."+u.value)
	}
	for _, code := range Languages {
		for _, k := range keys {
			if _, ok := cats[code][k]; !ok {
				t.Errorf("the %s catalog lacks %q", code, k)
			}
		}
	}
}

// gridRaiseRequest is a raise form as a browser sends it, with files named and holding the bytes
// given.
func gridRaiseRequest(t *testing.T, fields map[string]string, files map[string][]byte) *http.Request {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range files {
		part, err := w.CreateFormFile("photos", name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := part.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, gridRaisePath, &body)
	r.Header.Set("Content-Type", w.FormDataContentType())
	if err := r.ParseMultipartForm(gridRaiseMemory); err != nil {
		t.Fatal(err)
	}
	return r
}

// gridTinyPNG is a valid PNG of one pixel.
func gridTinyPNG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestARaiseFormIsCheckedFieldByFieldAndKeepsWhatWasSent(t *testing.T) {
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	en := lang{"en", cats["en"]}
	categories := []gridOption{{"blocked-drain", "Blocked drain"}, {"noise", "Noise"}}
	valid := func() map[string]string {
		return map[string]string{"request_id": "web-ABC", "category": "blocked-drain", "urgency": "urgent",
			"text": "  Drain blocked\r\nat the gate  ", "latitude": "22.7360", "longitude": "110.3050"}
	}

	f, in := readGridRaiseForm(gridRaiseRequest(t, valid(), map[string][]byte{"drain.png": gridTinyPNG(t)}), en, categories)
	if len(f.Errors) > 0 {
		t.Fatalf("a valid form was refused: %v", f.Errors)
	}
	if in.text != "Drain blocked\nat the gate" || in.urgency != whistlev1.Urgency_URGENCY_URGENT || len(in.photos) != 1 ||
		in.location.GetLatitude() != 22.736 || in.location.GetLongitude() != 110.305 {
		t.Errorf("a valid form read as %+v", in)
	}

	for _, tc := range []struct {
		name   string
		change func(map[string]string)
		files  map[string][]byte
		field  string
		says   string
	}{
		{"no text", func(m map[string]string) { m["text"] = " \r\n " }, nil, "text", "text is required"},
		{"a text too long", func(m map[string]string) { m["text"] = strings.Repeat("水", gridMaxText+1) }, nil, "text", "at most 2000"},
		{"no category", func(m map[string]string) { m["category"] = "" }, nil, "category", "Choose a category"},
		{"an unknown category", func(m map[string]string) { m["category"] = "ufo" }, nil, "category", "no such category"},
		{"an unknown urgency", func(m map[string]string) { m["urgency"] = "whenever" }, nil, "urgency-normal", "urgency"},
		{"a latitude alone", func(m map[string]string) { m["longitude"] = "" }, nil, "locate", "location"},
		{"a point off the earth", func(m map[string]string) { m["latitude"] = "95" }, nil, "locate", "location"},
		{"a request id this console did not make", func(m map[string]string) { m["request_id"] = "a b" }, nil, "raise", "not made by the console"},
		{"a file that is no image", func(map[string]string) {}, map[string][]byte{"notes.txt": []byte("hello")}, "photos", "notes.txt is not a JPEG"},
		{"too many photos", func(map[string]string) {}, gridManyPhotos(t, gridMaxPhotos+1), "photos", "At most 6 photos"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields := valid()
			tc.change(fields)
			f, _ := readGridRaiseForm(gridRaiseRequest(t, fields, tc.files), en, categories)
			if got := f.Errors.Of(tc.field); !strings.Contains(got, tc.says) {
				t.Errorf("what is wrong with %s: %q (all: %v); want it to say %q", tc.field, got, f.Errors, tc.says)
			}
			if f.Text != strings.ReplaceAll(fields["text"], "\r\n", "\n") || f.Category != strings.TrimSpace(fields["category"]) {
				t.Errorf("the form came back without what was sent: %+v", f)
			}
			if (tc.files != nil) != f.PhotosAgain {
				t.Errorf("PhotosAgain = %v with %d photos sent", f.PhotosAgain, len(tc.files))
			}
			if tc.field == "raise" && (f.RequestID == fields["request_id"] || !gridValidRequestID(f.RequestID)) {
				t.Errorf("a bad request id came back as %q; want a fresh valid one", f.RequestID)
			}
		})
	}
}

// gridManyPhotos is n distinct small photos.
func gridManyPhotos(t *testing.T, n int) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for i := range n {
		files["p"+strconv.Itoa(i)+".png"] = gridTinyPNG(t)
	}
	return files
}

func TestAFreshRequestIDIsOneIntakeAccepts(t *testing.T) {
	a, b := gridRequestID(), gridRequestID()
	if a == b || !gridValidRequestID(a) || !gridValidRequestID(b) {
		t.Errorf("two fresh request ids: %q and %q", a, b)
	}
	for _, bad := range []string{"", "a b", "中文", strings.Repeat("x", 65)} {
		if gridValidRequestID(bad) {
			t.Errorf("%q passed as a request id", bad)
		}
	}
}
