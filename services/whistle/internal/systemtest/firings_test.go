package systemtest

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// TestFiringsCheckFindsADeadlineFiredTwiceMissedMisnamedEarlyOrUnowed judges made-up histories,
// so that the tests relying on Check are known to fail when a deadline did not fire exactly once.
func TestFiringsCheckFindsADeadlineFiredTwiceMissedMisnamedEarlyOrUnowed(t *testing.T) {
	t.Parallel()
	deadline := Epoch.Add(time.Hour)
	now := deadline.Add(time.Minute)
	breach := func(seq uint64, at, named time.Time) eventlog.Record {
		return eventlog.Record{Seq: seq, Time: at, Event: &whistlev1.Event{IssueId: "i", Payload: &whistlev1.Event_Breached{
			Breached: &whistlev1.DeadlineBreached{Deadline: timestamppb.New(named)}}}}
	}
	tests := []struct {
		name  string
		clock Firing
		want  string // in the error; empty for none
	}{
		{"fired once", Firing{Deadline: deadline, Breaches: []eventlog.Record{breach(7, deadline, deadline)}}, ""},
		{"not yet due", Firing{Deadline: now.Add(time.Second)}, ""},
		{"cleared in time", Firing{Deadline: deadline, Cleared: deadline}, ""},
		{"cleared late and fired once", Firing{Deadline: deadline, Cleared: deadline.Add(time.Millisecond),
			Breaches: []eventlog.Record{breach(7, deadline.Add(time.Second), deadline)}}, ""},
		{"missed", Firing{Deadline: deadline}, "owed a breach, none recorded"},
		{"missed though cleared late", Firing{Deadline: deadline, Cleared: deadline.Add(time.Millisecond)}, "owed a breach, none recorded"},
		{"fired twice", Firing{Deadline: deadline, Breaches: []eventlog.Record{breach(7, deadline, deadline), breach(9, now, deadline)}},
			"owed 1, recorded 2 (at 7, 9)"},
		{"fired though cleared in time", Firing{Deadline: deadline, Cleared: deadline.Add(-time.Second),
			Breaches: []eventlog.Record{breach(7, deadline, deadline)}}, "owed 0, recorded 1"},
		{"naming another deadline", Firing{Deadline: deadline, Breaches: []eventlog.Record{breach(7, now, deadline.Add(time.Second))}},
			"the breach at 7 names the deadline"},
		{"stored before the deadline", Firing{Deadline: deadline, Breaches: []eventlog.Record{breach(7, deadline.Add(-time.Millisecond), deadline)}},
			"before the deadline"},
		{"of a deadline never dispatched", Firing{Breaches: []eventlog.Record{breach(7, now, deadline)}}, "never dispatched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := Firings{Now: now, Clocks: map[Clock]*Firing{{"i", "unit", whistlev1.DeadlineKind_DEADLINE_KIND_REPORT_IN}: &tt.clock}}
			err := fs.Check()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check() = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
