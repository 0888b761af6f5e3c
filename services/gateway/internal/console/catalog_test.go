package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"testing"
)

// tKey finds the catalog keys a template names: .L.T "key" or $.L.T "key".
var tKey = regexp.MustCompile(`\.L\.T "([a-z0-9_.-]+)"`)

func TestEveryLanguageHasEveryKeyAndEveryKeyATemplateNamesExists(t *testing.T) {
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	first := cats[Languages[0]]
	for _, code := range Languages[1:] {
		for k := range first {
			if _, ok := cats[code][k]; !ok {
				t.Errorf("%s lacks %q, which %s has", code, k, Languages[0])
			}
		}
		for k := range cats[code] {
			if _, ok := first[k]; !ok {
				t.Errorf("%s lacks %q, which %s has", Languages[0], k, code)
			}
		}
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil || len(names) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	for _, name := range names {
		b, err := templateFiles.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tKey.FindAllSubmatch(b, -1) {
			if _, ok := first[string(m[1])]; !ok {
				t.Errorf("%s names %q, which no catalog has", name, m[1])
			}
		}
	}
}

func TestTheLanguageIsTheChosenOneElseTheBrowsersElseChinese(t *testing.T) {
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ cookie, accept, want string }{
		{"", "", "zh"},
		{"", "en-GB,en;q=0.9", "en"},
		{"", "fr-FR, de;q=0.8", "zh"},
		{"", "fr, en;q=0.5", "en"},
		{"zh", "en", "zh"},
		{"xx", "en", "en"},
	} {
		r := httptestRequest(c.cookie, c.accept)
		if got := cats.languageOf(r).Code; got != c.want {
			t.Errorf("cookie %q, Accept-Language %q: %s, want %s", c.cookie, c.accept, got, c.want)
		}
	}
	if !slices.Equal(Languages, []string{"zh", "en"}) {
		t.Errorf("the languages are %v; Chinese must come first, as the default", Languages)
	}
}

func httptestRequest(cookie, accept string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/console/", nil)
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: langCookie, Value: cookie})
	}
	if accept != "" {
		r.Header.Set("Accept-Language", accept)
	}
	return r
}
