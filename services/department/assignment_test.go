package department

import (
	"context"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/services/department/internal/store"
	"github.com/whistle-dispatch/whistle/services/internal/assignment/assignmenttest"
)

func TestTheDepartmentsViewJudgesAssignmentEventsAsTheAssignmentMachineDoes(t *testing.T) {
	t.Parallel()
	st := store.New(redistest.Client(t, redistest.Run(t)))
	assignmenttest.Run(t, assignmenttest.Subject{
		Apply: st.Apply,
		Parts: func(ctx context.Context, id string) (map[string]assignmenttest.Part, error) {
			is, err := st.Get(ctx, id)
			if err != nil {
				return nil, err
			}
			out := map[string]assignmenttest.Part{}
			for _, a := range is.Assignments {
				out[a.DepartmentID] = assignmenttest.PartOf(&a)
			}
			return out, nil
		},
	})
}
