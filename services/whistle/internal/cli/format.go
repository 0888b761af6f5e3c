package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// now is the clock that relative deadlines ("in 25m") are measured against.
var now = time.Now

// printJSON writes a unary response as indented protojson, for people and for jq.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// printJSONLine writes one message of a stream as one line of protojson, so that a stream
// reads as JSON Lines.
func printJSONLine(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// say writes one sentence on a line of its own: what a command prints when a list is empty,
// so that nobody has to read a bare header row as "nothing".
func say(w io.Writer, sentence string) error {
	_, err := fmt.Fprintln(w, sentence)
	return err
}

// cellLine is one table row written at once, for streams, where a table cannot wait to align
// its columns.
func cellLine(cells []string) string { return strings.Join(cells, "  ") }

// padded pads each cell to its width, so that the lines of a stream, written one at a time,
// line up under its header as a table's do; a width of 0, and a longer cell, are left as they are.
func padded(cells []string, widths []int) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = c
		if i < len(widths) {
			out[i] = fmt.Sprintf("%-*s", widths[i], c)
		}
	}
	return out
}

// table returns a tabwriter for compact aligned columns; the caller must Flush it.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes tab-separated cells as one line of a table.
func row(w io.Writer, cells ...string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// enumText is an enum value as people write it: the name without the type's prefix, in
// lower case with hyphens ("ISSUE_STATUS_IN_PROGRESS" becomes "in-progress").
func enumText(e protoreflect.Enum) string {
	values := e.Descriptor().Values()
	prefix := strings.TrimSuffix(string(values.ByNumber(0).Name()), "UNSPECIFIED")
	v := values.ByNumber(e.Number())
	if v == nil {
		return fmt.Sprint(e.Number())
	}
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(string(v.Name()), prefix), "_", "-"))
}

// parseEnum reads an enum value written as enumText writes it (underscores and any case
// accepted too), so that flags take the same words the output shows.
func parseEnum[E interface {
	~int32
	protoreflect.Enum
}](flag, s string) (E, error) {
	var zero E
	want := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"))
	values := zero.Descriptor().Values()
	var names []string
	for i := 1; i < values.Len(); i++ {
		e := E(values.Get(i).Number())
		if enumText(e) == want {
			return e, nil
		}
		names = append(names, enumText(e))
	}
	return zero, invalid("--%s must be one of %s; got %q", flag, strings.Join(names, ", "), s)
}

// when is a timestamp in local time, or "-" when it is unset.
func when(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format("2006-01-02 15:04:05")
}

// deadline says how far off a deadline is, to the nearest second: "in 25m", "overdue 1m30s", or
// "in <1s" when less than half a second is left. Rounding, not truncating, keeps a deadline an
// hour off reading "in 1h" in the moment after it was set, not "in 59m59s".
func deadline(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	left := ts.AsTime().Sub(now())
	word := "in "
	if left < 0 {
		word, left = "overdue ", -left
	}
	if left = left.Round(time.Second); left == 0 {
		return word + "<1s"
	}
	return word + span(left)
}

// span is a duration written exactly in days, hours, minutes and seconds, leaving out the units
// that are zero: "30s", "1m30s", "2h", "1d", "7d12h". Nothing is rounded, because a limit shown
// rounded (a 30s report-in limit as "1m") tells an officer they have time they do not have.
// A fraction of a second, which no limit in practice has, is kept as a decimal ("1.5s").
func span(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteString("-")
		d = -d
	}
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if n := d / u.size; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.size
		}
	}
	if d > 0 {
		b.WriteString(strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s")
	}
	return b.String()
}

// limit is a duration setting such as an SLA time limit, written exactly by span.
func limit(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	return span(d.AsDuration())
}

// clip shortens free text to one table cell.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// orDash is s, or "-" when s is empty, so that empty cells keep their column.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
