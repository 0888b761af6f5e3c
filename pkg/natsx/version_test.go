package natsx_test

import (
	"strings"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/pkg/testing/natstest"
)

func TestVersionAtLeastOrdersServerVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		have, min string
		want      bool
	}{
		{"2.11.0", "2.11.0", true},
		{"2.11.1", "2.11.0", true},
		{"2.12.0", "2.11.0", true},
		{"3.0.0", "2.11.0", true},
		{"v2.15.2", "2.11.0", true},
		{"2.10.29", "2.11.0", false},
		{"2.9.25", "2.11.0", false},
		{"1.99.99", "2.11.0", false},
		{"2.11.0-RC.1", "2.11.0", false},
		{"2.11.1-RC.1", "2.11.0", true},
		{"2.11.0-RC.2", "2.11.0-RC.1", true},
		{"2.11.0+build.5", "2.11.0", true},
	}
	for _, tc := range tests {
		got, err := natsx.VersionAtLeast(tc.have, tc.min)
		if err != nil || got != tc.want {
			t.Errorf("VersionAtLeast(%q, %q) = %v, %v; want %v", tc.have, tc.min, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "2.11", "two.eleven.zero", "2.11.x"} {
		if _, err := natsx.VersionAtLeast(bad, "2.11.0"); err == nil {
			t.Errorf("VersionAtLeast(%q) accepted a version that is not one", bad)
		}
	}
}

func TestCheckServerVersionAcceptsTheCurrentServerAndRefusesANewerMinimumNamingBoth(t *testing.T) {
	t.Parallel()
	nc := natstest.Connect(t, natstest.RunServer(t))
	if err := natsx.CheckServerVersion(nc, "2.11.0", "conditional appends need"); err != nil {
		t.Errorf("the embedded server %s was refused: %v", nc.ConnectedServerVersion(), err)
	}
	err := natsx.CheckServerVersion(nc, "99.0.0", "a test needs")
	if err == nil {
		t.Fatal("a server older than the minimum was accepted")
	}
	for _, want := range []string{nc.ConnectedServerVersion(), "99.0.0", "a test needs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not name %q", err, want)
		}
	}
}
