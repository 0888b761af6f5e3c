package escalation_test

import (
	"context"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/services/escalation/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmenttest"
)

func TestEscalationsClocksJudgeAssignmentEventsAsTheAssignmentMachineDoes(t *testing.T) {
	st := store.New(redistest.Client(t, redistest.Run(t)), nil, nil)
	assignmenttest.Run(t, assignmenttest.Subject{
		Apply: st.Apply,
		Parts: func(ctx context.Context, id string) (map[string]assignmenttest.Part, error) {
			is, err := st.Issue(ctx, id)
			if err != nil {
				return nil, err
			}
			out := map[string]assignmenttest.Part{}
			for dept, a := range is.Assignments {
				m := a.Machine(dept)
				out[dept] = assignmenttest.PartOf(m)
			}
			return out, nil
		},
	})
}
