package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

// writeShortDeadlineCatalog writes into dir a copy of the embedded sample city in which the
// normal report-in limit of category is reportIn instead of the sample's, and returns its path.
// Everything else (areas, departments, every other limit) is the sample's, so the sample's
// routing rules run on it unchanged. The copy is the sample's text with one policy added and the
// category's normal policy pointed at it, so that no other category sharing the sample's policy
// changes.
func writeShortDeadlineCatalog(dir, category string, reportIn time.Duration) (string, error) {
	sample, err := catalog.Sample()
	if err != nil {
		return "", fmt.Errorf("bench: sample catalog: %w", err)
	}
	k, err := sample.Category(category)
	if err != nil {
		return "", fmt.Errorf("bench: the sample catalog has no category %q", category)
	}
	src := string(catalog.SampleSource())
	line := regexp.MustCompile(`(?m)^(\s*- \{id: ` + regexp.QuoteMeta(category) + `,.*?normal: )[a-z-]+`)
	if !line.MatchString(src) {
		return "", fmt.Errorf("bench: the sample catalog writes category %q in a shape this bench cannot change", category)
	}
	src = line.ReplaceAllString(src, "${1}bench-short")
	policy := fmt.Sprintf("policies:\n  bench-short: {report_in: %s, resolve: %s}\n", reportIn, k.Normal.Resolve)
	if !strings.Contains(src, "\npolicies:\n") {
		return "", errors.New("bench: the sample catalog has no policies section")
	}
	data := []byte(strings.Replace(src, "policies:\n", policy, 1))
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
