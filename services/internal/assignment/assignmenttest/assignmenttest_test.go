package assignmenttest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/assignment"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmentpb"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmenttest"
)

// machineFold is the smallest projection there is: the assignment machine alone, reading events
// with assignmentpb. The suite's table is what it gives, so the services that pass the suite judge
// as it does.
type machineFold struct {
	mu     sync.Mutex
	issues map[string]*issue
}

type issue struct {
	last  uint64
	parts []assignment.Assignment
}

func (f *machineFold) apply(_ context.Context, rec eventlog.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := rec.Event.GetIssueId()
	is := f.issues[id]
	if is == nil {
		if rec.Event.GetRaised() == nil {
			return eventlog.Impossible("a %s event before the issue was raised", eventlog.Kind(rec.Event))
		}
		f.issues[id] = &issue{last: rec.Seq}
		return nil
	}
	if rec.Event.GetPrevSeq() != is.last {
		return fmt.Errorf("%d does not follow %d: %w", rec.Seq, is.last, eventlog.ErrGap)
	}
	find := func(dept string) *assignment.Assignment {
		for k := range is.parts {
			if is.parts[k].DepartmentID == dept {
				return &is.parts[k]
			}
		}
		return nil
	}
	at, by := rec.Time, rec.Event.GetActor().GetSubject()
	var err error
	switch p := rec.Event.GetPayload().(type) {
	case *whistlev1.Event_Raised:
		err = eventlog.Impossible("the issue was raised before")
	case *whistlev1.Event_Routed:
		is.parts = append(is.parts, assignment.Summon(assignmentpb.Dispatches(p.Routed), at, func(dept string) bool { return find(dept) != nil })...)
	case *whistlev1.Event_Acknowledged:
		dept := p.Acknowledged.GetDepartmentId()
		err = find(dept).Acknowledge(assignment.Acknowledgement{DepartmentID: dept, At: at, By: by})
	case *whistlev1.Event_Resolved:
		dept := p.Resolved.GetDepartmentId()
		err = find(dept).Resolve(assignment.Resolution{DepartmentID: dept, At: at, By: by, Note: p.Resolved.GetNote()})
	case *whistlev1.Event_Breached:
		err = find(p.Breached.GetDepartmentId()).Breach(assignmentpb.Breach(p.Breached, at))
	case *whistlev1.Event_ExtensionRequested:
		dept := p.ExtensionRequested.GetDepartmentId()
		err = find(dept).RequestExtension(dept, assignmentpb.Extension(p.ExtensionRequested, at, by))
	case *whistlev1.Event_ExtensionDecided:
		err = find(p.ExtensionDecided.GetDepartmentId()).DecideExtension(assignmentpb.Decision(p.ExtensionDecided, at, by))
	case *whistlev1.Event_Urged:
		dept := p.Urged.GetDepartmentId()
		err = find(dept).Urge(dept)
	}
	if err != nil {
		return err
	}
	is.last = rec.Seq
	return nil
}

func (f *machineFold) parts(_ context.Context, id string) (map[string]assignmenttest.Part, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]assignmenttest.Part{}
	for _, a := range f.issues[id].parts {
		out[a.DepartmentID] = assignmenttest.PartOf(&a)
	}
	return out, nil
}

func TestTheMachineAloneReachesTheSuitesVerdicts(t *testing.T) {
	f := &machineFold{issues: map[string]*issue{}}
	assignmenttest.Run(t, assignmenttest.Subject{Apply: f.apply, Parts: f.parts})
}
