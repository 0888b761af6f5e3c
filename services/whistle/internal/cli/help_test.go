package cli_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/whistle-dispatch/whistle/services/whistle/internal/cli"
)

// help returns what `whistle <args> --help` prints.
func help(t *testing.T, args ...string) string {
	t.Helper()
	root := &cobra.Command{Use: "whistle", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(cli.Commands()...)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--help"))
	if err := root.Execute(); err != nil {
		t.Fatalf("whistle %s --help: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// pflag takes a back-quoted word in a flag's usage as the flag's value name, so a usage that
// quotes a command (`whistle areas`) shows that command where the value belongs.
func TestHelpNamesEachFlagsValueAsAnIDNotACommand(t *testing.T) {
	for _, cmd := range [][]string{{"raise"}, {"route", "explain"}} {
		out := help(t, cmd...)
		for _, flag := range []string{"grid", "category"} {
			if !regexp.MustCompile(`--` + flag + ` id\s`).MatchString(out) {
				t.Errorf("whistle %s --help does not show --%s id:\n%s", strings.Join(cmd, " "), flag, out)
			}
		}
		if regexp.MustCompile(`--\w+ whistle`).MatchString(out) {
			t.Errorf("whistle %s --help shows a command as a flag's value name:\n%s", strings.Join(cmd, " "), out)
		}
	}
}
