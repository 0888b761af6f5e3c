package routing_test

import (
	"context"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmenttest"
	"github.com/whistle-dispatch/whistle/services/routing/internal/store"
)

func TestRoutingsFoldJudgesAssignmentEventsAsTheAssignmentMachineDoes(t *testing.T) {
	st := store.New(redistest.Client(t, redistest.Run(t)))
	assignmenttest.Run(t, assignmenttest.Subject{
		Apply: st.Apply,
		Parts: func(ctx context.Context, id string) (map[string]assignmenttest.Part, error) {
			is, err := st.Get(ctx, id)
			if err != nil {
				return nil, err
			}
			out := map[string]assignmenttest.Part{}
			for i := range is.Assignments {
				a := &is.Assignments[i]
				out[a.DepartmentID] = assignmenttest.PartOf(a)
			}
			return out, nil
		},
	})
}
