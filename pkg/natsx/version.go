package natsx

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// CheckServerVersion refuses the server nc is connected to when it is older than min
// (major.minor.patch), naming both versions and what needs the newer one, so that a feature
// an older server would silently ignore is caught at start instead of by a lost write.
func CheckServerVersion(nc *nats.Conn, min, why string) error {
	have := nc.ConnectedServerVersion()
	ok, err := VersionAtLeast(have, min)
	if err != nil {
		return fmt.Errorf("natsx: NATS server version: %w", err)
	}
	if !ok {
		return fmt.Errorf("natsx: NATS server %s is %s, older than %s, which %s: upgrade the server",
			nc.ConnectedUrlRedacted(), have, min, why)
	}
	return nil
}

// VersionAtLeast reports whether the server version have is min or newer. Versions are
// major.minor.patch with an optional leading "v" and an optional pre-release ("-RC.1"), which
// comes before its release, as in semantic versioning; so 2.11.0-RC.1 is older than 2.11.0.
func VersionAtLeast(have, min string) (bool, error) {
	h, hPre, err := parseVersion(have)
	if err != nil {
		return false, err
	}
	m, mPre, err := parseVersion(min)
	if err != nil {
		return false, err
	}
	for i := range h {
		if h[i] != m[i] {
			return h[i] > m[i], nil
		}
	}
	// Equal numbers: a release is newer than its pre-releases; two pre-releases are not
	// ordered further, and one equal to the minimum's counts as it.
	return hPre == "" || mPre != "", nil
}

// parseVersion splits "v2.11.3-RC.1" into [2 11 3] and "RC.1".
func parseVersion(v string) ([3]int, string, error) {
	var out [3]int
	core, pre, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(v), "v"), "-")
	core, _, _ = strings.Cut(core, "+") // build metadata orders nothing
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return out, "", fmt.Errorf("version %q: want major.minor.patch", v)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, "", fmt.Errorf("version %q: %q is not a number", v, p)
		}
		out[i] = n
	}
	return out, pre, nil
}
