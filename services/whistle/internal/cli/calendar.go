package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/whistle-dispatch/whistle/services/internal/workcal"
)

// calendarCommand prints a year of the working calendar. It reads the calendar where the
// program runs and calls no server, so it takes no connection flags.
func calendarCommand() *cobra.Command {
	var paths []string
	cmd := &cobra.Command{
		Use:   "calendar YEAR",
		Short: "Show a year of the working calendar: its notice, hours, holidays, adjusted working days",
		Long: "Show a year of the working calendar, the working days and hours that time limits are\n" +
			"counted in when they run in working time: the notice its days follow and whether they were\n" +
			"checked against it, the working hours, each holiday, each adjusted working day (调休上班),\n" +
			"and the working days of each month. --calendar adds a city's own year files to the embedded\n" +
			"ones, to check them before use.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			year, err := strconv.Atoi(args[0])
			if err != nil {
				return fmt.Errorf("%q is not a year", args[0])
			}
			cal, err := workcal.Load(paths...)
			if err != nil {
				return err
			}
			y, err := cal.Year(year)
			if err != nil {
				return err
			}
			return printYear(cmd.OutOrStdout(), cal, y)
		},
	}
	cmd.Flags().StringSliceVar(&paths, "calendar", nil, "a city's year `file` or folder of them, beside the embedded years (repeatable)")
	return cmd
}

// printYear writes the year as four parts: what it is, its holidays, its adjusted working days
// and its working days by month. Chinese names come last in each row, where their width
// cannot break the columns.
func printYear(w io.Writer, cal *workcal.Calendar, y *workcal.Year) error {
	src := y.Source.Title
	if y.Source.Number != "" {
		src += " (" + y.Source.Number + ")"
	}
	if !y.Source.Issued.IsZero() {
		src += ", issued " + y.Source.Issued.Format(time.DateOnly)
	}
	verified := "yes: the days were checked against the notice"
	if !y.Verified {
		verified = "NO: the days were not checked against the notice"
	}
	var spans []string
	var perDay time.Duration
	for _, s := range y.Hours {
		spans = append(spans, s.String())
		perDay += s.To - s.From
	}
	tw := table(w)
	row(tw, "Year:", strconv.Itoa(y.Year))
	row(tw, "Source:", src)
	row(tw, "Verified:", verified)
	if y.Note != "" {
		row(tw, "Note:", strings.Join(strings.Fields(y.Note), " "))
	}
	row(tw, "File:", y.File)
	row(tw, "Time zone:", y.Zone.String())
	row(tw, "Working hours:", strings.Join(spans, ", ")+" ("+span(perDay)+" a working day)")
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nHolidays")
	tw = table(w)
	row(tw, "FROM", "TO", "DAYS", "NAME")
	for _, h := range y.Holidays {
		row(tw, h.From.Format("2006-01-02 Mon"), h.To.Format("2006-01-02 Mon"), strconv.Itoa(h.Days()), h.Name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nAdjusted working days (调休上班)")
	tw = table(w)
	row(tw, "DATE", "FOR")
	for _, a := range y.Adjusted {
		row(tw, a.Date.Format("2006-01-02 Mon"), a.For)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nWorking days")
	tw = table(w)
	row(tw, "MONTH", "DAYS")
	total := 0
	for m := time.January; m <= time.December; m++ {
		n := 0
		for d := time.Date(y.Year, m, 1, 0, 0, 0, 0, cal.Zone()); d.Month() == m; d = d.AddDate(0, 0, 1) {
			working, err := cal.IsWorkingDay(d)
			if err != nil {
				return err
			}
			if working {
				n++
			}
		}
		total += n
		row(tw, m.String()[:3], strconv.Itoa(n))
	}
	row(tw, "Year", strconv.Itoa(total))
	return tw.Flush()
}
