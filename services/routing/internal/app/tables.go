package app

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/routing/internal/domain"
)

// Loaded is a rules table with the catalog it was checked against, as one process holds them.
type Loaded struct {
	Catalog  *catalog.Catalog
	Table    *domain.Table
	LoadedAt time.Time
}

// Source is where the rules and the catalog come from: files, or the embedded sample city and its
// rules when a path is empty.
type Source struct {
	RulesPath, CatalogPath string
	// SampleRules are the rules used when RulesPath is empty.
	SampleRules []byte
}

// read loads and checks both files.
func (src Source) read(now time.Time) (*Loaded, error) {
	cat, err := catalog.Load(src.CatalogPath)
	if err != nil {
		return nil, err
	}
	name, data := "rules.yaml", src.SampleRules
	if src.RulesPath != "" {
		name = filepath.Base(src.RulesPath)
		if data, err = os.ReadFile(src.RulesPath); err != nil {
			return nil, fmt.Errorf("read rules: %w", err)
		}
	}
	t, err := domain.ParseRules(name, data, cat)
	if err != nil {
		return nil, err
	}
	return &Loaded{Catalog: cat, Table: t, LoadedAt: now}, nil
}

// Tables holds the rules in force. A reload reads both files again and puts them in force only
// when they pass every check; a failed reload leaves the rules in force as they were. Every route
// reads the rules in force once, so one decision never mixes two versions.
type Tables struct {
	src    Source
	cur    atomic.Pointer[Loaded]
	reload sync.Mutex // one reload at a time
}

// NewTables loads the rules and catalog from src, with cat as the catalog when src names none
// (the process's own, already loaded).
func NewTables(src Source, now time.Time) (*Tables, error) {
	l, err := src.read(now)
	if err != nil {
		return nil, err
	}
	t := &Tables{src: src}
	t.cur.Store(l)
	return t, nil
}

// Current returns the rules in force.
func (t *Tables) Current() *Loaded { return t.cur.Load() }

// Reload reads the files again and puts them in force if they pass every check, returning the
// rules in force afterwards and whether they changed. A refusal returns the reason, and the rules
// in force stay.
func (t *Tables) Reload(now time.Time) (*Loaded, bool, error) {
	t.reload.Lock()
	defer t.reload.Unlock()
	before := t.cur.Load()
	l, err := t.src.read(now)
	if err != nil {
		return before, false, err
	}
	if l.Table.Version() == before.Table.Version() {
		return before, false, nil
	}
	t.cur.Store(l)
	return l, true, nil
}

// Paths are the files a reload reads, for watching them; none for the embedded ones.
func (t *Tables) Paths() []string {
	var out []string
	for _, p := range []string{t.src.RulesPath, t.src.CatalogPath} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
