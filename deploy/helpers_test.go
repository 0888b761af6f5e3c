package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// services are Whistle's services, each a Deployment, a compose service and a NATS user.
var services = []string{"intake", "routing", "department", "escalation"}

// gatewayName is the role that serves the console and Open311 in front of the services: a
// process with /healthz and /metrics, a Redis user and the token key, as a service has, but no
// NATS user, streams or gRPC API of its own.
const gatewayName = "gateway"

// processes are what runs as `whistle serve NAME`: the services and the gateway, each a
// Deployment, a compose service, a Redis user and a target of Prometheus.
var processes = append(slices.Clone(services), gatewayName)

// deployDir is the folder this package's tests run in: the repository's deploy/.
func deployDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// repoRoot is the repository's root, above deploy/.
func repoRoot(t *testing.T) string {
	t.Helper()
	return filepath.Dir(deployDir(t))
}

// copyTree copies the files under src into dst, a new folder, so a test can break a copy.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// edit is one change to a copy of a file: old, which must occur exactly once, becomes new.
// Requiring one occurrence keeps a test that breaks a file from passing because the text it
// meant to break is no longer there.
type edit struct {
	file     string // relative to the copy's root
	old, new string
}

// apply makes the edit in the copy rooted at root.
func (e edit) apply(t *testing.T, root string) {
	t.Helper()
	path := filepath.Join(root, e.file)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), e.old); n != 1 {
		t.Fatalf("%s holds %q %d times, want once: the edit no longer breaks what it names", e.file, e.old, n)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), e.old, e.new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// joinErrors reads a list of problems as one string, for matching what a check found.
func joinErrors(errs []error) string {
	var b strings.Builder
	for _, err := range errs {
		b.WriteString(err.Error())
		b.WriteString("\n")
	}
	return b.String()
}
