package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// catalogFile is a catalog in the shape of services/internal/catalog/city.yaml, written to
// be read back by catalog.Load.
type catalogFile struct {
	City        catalogCity              `yaml:"city"`
	Departments []catalogDepartment      `yaml:"departments"`
	Policies    map[string]catalogPolicy `yaml:"policies"`
	Categories  []catalogCategory        `yaml:"categories"`
}

type catalogCity struct {
	ID      string          `yaml:"id"`
	Name    string          `yaml:"name"`
	Streets []catalogStreet `yaml:"streets"`
}

type catalogStreet struct {
	ID          string             `yaml:"id"`
	Name        string             `yaml:"name"`
	Communities []catalogCommunity `yaml:"communities"`
}

type catalogCommunity struct {
	ID    string   `yaml:"id"`
	Name  string   `yaml:"name"`
	Grids []string `yaml:"grids"`
}

type catalogDepartment struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
}

type catalogPolicy struct {
	ReportIn string `yaml:"report_in"`
	Resolve  string `yaml:"resolve"`
}

type catalogCategory struct {
	ID        string `yaml:"id"`
	Name      string `yaml:"name"`
	Normal    string `yaml:"normal"`
	Urgent    string `yaml:"urgent"`
	Emergency string `yaml:"emergency"`
}

// writeShortDeadlineCatalog writes into dir a copy of the embedded sample city in which the
// normal report-in limit of category is reportIn instead of the sample's, and returns its path.
// Everything else (areas, departments, every other limit) is the sample's, so the sample's
// routing rules run on it unchanged. The copy is built from the loaded sample rather than its
// text, which the catalog package keeps to itself; each category names policies of its own, so
// that changing one category's limit changes no other category sharing the sample's policy.
func writeShortDeadlineCatalog(dir, category string, reportIn time.Duration) (string, error) {
	sample, err := catalog.Sample()
	if err != nil {
		return "", fmt.Errorf("bench: sample catalog: %w", err)
	}
	f := catalogFile{Policies: map[string]catalogPolicy{}}
	streets := map[string]int{}        // street id → index in f.City.Streets
	communities := map[string]int{}    // community id → index in its street's Communities
	for _, a := range sample.Areas() { // parents before children
		switch a.Level {
		case catalog.LevelCity:
			f.City.ID, f.City.Name = a.ID, a.Name
		case catalog.LevelStreet:
			streets[a.ID] = len(f.City.Streets)
			f.City.Streets = append(f.City.Streets, catalogStreet{ID: a.ID, Name: a.Name})
		case catalog.LevelCommunity:
			s := &f.City.Streets[streets[a.ParentID]]
			communities[a.ID] = len(s.Communities)
			s.Communities = append(s.Communities, catalogCommunity{ID: a.ID, Name: a.Name})
		case catalog.LevelGrid:
			community, err := sample.Area(a.ParentID)
			if err != nil {
				return "", fmt.Errorf("bench: sample catalog: %w", err)
			}
			s := &f.City.Streets[streets[community.ParentID]]
			c := &s.Communities[communities[a.ParentID]]
			c.Grids = append(c.Grids, a.ID)
		}
	}
	for _, d := range sample.Departments() {
		f.Departments = append(f.Departments, catalogDepartment{ID: d.ID, Name: d.Name})
	}
	policy := func(p catalog.Policy) catalogPolicy {
		return catalogPolicy{ReportIn: p.ReportIn.String(), Resolve: p.Resolve.String()}
	}
	found := false
	for _, k := range sample.Categories() {
		if k.ID == category {
			found = true
			k.Normal.ReportIn = reportIn
		}
		f.Policies[k.ID+"-normal"] = policy(k.Normal)
		f.Policies[k.ID+"-urgent"] = policy(k.Urgent)
		f.Policies[k.ID+"-emergency"] = policy(k.Emergency)
		f.Categories = append(f.Categories, catalogCategory{ID: k.ID, Name: k.Name,
			Normal: k.ID + "-normal", Urgent: k.ID + "-urgent", Emergency: k.ID + "-emergency"})
		// The format requires a policy named danger, its fallback for a category without an
		// emergency policy, even when every category names its own, as here; the first
		// category's emergency limits serve, and no category refers to it.
		if _, ok := f.Policies["danger"]; !ok {
			f.Policies["danger"] = policy(k.Emergency)
		}
	}
	if !found {
		return "", fmt.Errorf("bench: the sample catalog has no category %q", category)
	}
	data, err := yaml.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("bench: catalog: %w", err)
	}
	// The copy must read back as a catalog before a system is started on it.
	if _, err := catalog.Parse(data); err != nil {
		return "", fmt.Errorf("bench: the short-deadline catalog does not load: %w", err)
	}
	path := filepath.Join(dir, "city.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("bench: catalog: %w", err)
	}
	return path, nil
}
