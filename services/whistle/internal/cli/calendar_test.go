package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/whistle-dispatch/whistle/services/whistle/internal/cli"
)

// local runs a command that needs no server and returns what it printed and its error.
func local(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "whistle", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(cli.Commands()...)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestCalendarPrintsTheYearsNoticeHoursHolidaysAdjustedDaysAndWorkingDays(t *testing.T) {
	t.Parallel()
	out, err := local(t, "calendar", "2025")
	if err != nil {
		t.Fatalf("whistle calendar 2025: %v", err)
	}
	for _, want := range []string{
		`Source:\s+国务院办公厅关于2025年部分节假日安排的通知 \(国办发明电〔2024〕12号\), issued 2024-11-12`,
		`Verified:\s+yes`,
		`Working hours:\s+09:00–12:00, 13:30–17:30 \(7h a working day\)`,
		`2025-01-28 Tue\s+2025-02-04 Tue\s+8\s+春节`,
		`2025-10-01 Wed\s+2025-10-08 Wed\s+8\s+国庆节、中秋节`,
		`2025-01-26 Sun\s+春节`,
		`2025-10-11 Sat\s+国庆节、中秋节`,
		`(?m)^Jan\s+19$`,
		`(?m)^Oct\s+18$`,
		`(?m)^Year\s+248$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("whistle calendar 2025 does not show %s:\n%s", want, out)
		}
	}
	if strings.Count(out, "\n2025-") != 6+5 {
		t.Errorf("whistle calendar 2025 should list 6 holidays and 5 adjusted working days:\n%s", out)
	}
}

func TestCalendarOfAYearItDoesNotKnowNamesTheYearsItKnows(t *testing.T) {
	t.Parallel()
	_, err := local(t, "calendar", "1999")
	if err == nil || !strings.Contains(err.Error(), "1999") || !strings.Contains(err.Error(), "2025, 2026") {
		t.Errorf("whistle calendar 1999: %v; want an error naming 1999 and the years known", err)
	}
	if _, err := local(t, "calendar", "next"); err == nil || !strings.Contains(err.Error(), `"next" is not a year`) {
		t.Errorf("whistle calendar next: %v", err)
	}
}

func TestCalendarChecksACitysFileAndShowsItsYear(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "2027.yaml")
	if err := os.WriteFile(good, []byte(`
year: 2027
source: {title: 某市2027年工作日安排}
verified: false
timezone: Asia/Shanghai
hours: [{from: "08:30", to: "17:00"}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := local(t, "calendar", "2027", "--calendar", good)
	if err != nil {
		t.Fatalf("whistle calendar 2027 --calendar %s: %v", good, err)
	}
	if !regexp.MustCompile(`Verified:\s+NO`).MatchString(out) || !regexp.MustCompile(`(?m)^Year\s+261$`).MatchString(out) {
		t.Errorf("a city's unverified 2027 of plain weeks (261 weekdays) shows:\n%s", out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("year: 2027\nholydays: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := local(t, "calendar", "2027", "--calendar", bad); err == nil || !strings.Contains(err.Error(), bad+`:2: unknown field "holydays"`) {
		t.Errorf("a broken city file: %v; want its fault with file and line", err)
	}
}
