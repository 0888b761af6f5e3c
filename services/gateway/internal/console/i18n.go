package console

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
)

// Each language's catalog is every file in locales/<language>/, one file per part of the console
// (common.json, and one per role's pages), so that the parts grow without meeting in one file.
//
//go:embed locales
var localeFiles embed.FS

// Languages are the catalogs' languages; the first is the default.
var Languages = []string{"zh", "en"}

// catalogs are the message catalogs, by language.
type catalogs map[string]map[string]string

// loadCatalogs reads every language's catalog; a key that two files of one language both give
// is refused, so that no file silently overrides another.
func loadCatalogs() (catalogs, error) {
	out := catalogs{}
	for _, code := range Languages {
		files, err := fs.Glob(localeFiles, "locales/"+code+"/*.json")
		if err != nil || len(files) == 0 {
			return nil, fmt.Errorf("console: no %s catalog (%v)", code, err)
		}
		all := map[string]string{}
		for _, name := range files {
			b, err := localeFiles.ReadFile(name)
			if err != nil {
				return nil, fmt.Errorf("console: %s: %w", name, err)
			}
			m := map[string]string{}
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fmt.Errorf("console: %s: %w", name, err)
			}
			for k, v := range m {
				if _, dup := all[k]; dup {
					return nil, fmt.Errorf("console: %s gives %q again", name, k)
				}
				all[k] = v
			}
		}
		out[code] = all
	}
	return out, nil
}

// lang is the language a page is written in, with its catalog.
type lang struct {
	Code string
	msgs map[string]string
}

// T is the catalog's message for key, with args filled in as by fmt.Sprintf. A key the catalog
// lacks shows itself, which a test keeps from happening.
func (l lang) T(key string, args ...any) string {
	msg, ok := l.msgs[key]
	if !ok {
		return key
	}
	if len(args) == 0 {
		return msg
	}
	return fmt.Sprintf(msg, args...)
}

// languageOf is the request's language: the one the person chose, else the first of the
// browser's that the console speaks, else Chinese.
func (c catalogs) languageOf(r *http.Request) lang {
	if ck, err := r.Cookie(langCookie); err == nil {
		if m, ok := c[ck.Value]; ok {
			return lang{ck.Value, m}
		}
	}
	for part := range strings.SplitSeq(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if m, ok := c[base]; ok {
			return lang{base, m}
		}
	}
	return lang{Languages[0], c[Languages[0]]}
}
