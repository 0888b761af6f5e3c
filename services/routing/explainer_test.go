package routing_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"github.com/whistle-dispatch/whistle/services/routing"
)

func TestAnExplainerSummonsTheUnitsTheSampleRulesNameAndRefusesAnUnknownGrid(t *testing.T) {
	e, err := routing.NewExplainer(routing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	night := time.Date(2026, 12, 2, 23, 30, 0, 0, shanghai)
	day := time.Date(2026, 12, 2, 14, 0, 0, 0, shanghai)
	cases := []struct {
		name string
		h    routing.Hypothetical
		want []string
	}{
		{"a blocked drain goes to water, with the street's squad",
			routing.Hypothetical{Grid: "xinhua-taoyuan-01", Category: "blocked-drain", At: day},
			[]string{"water", "urban-management-xinhua"}},
		{"noise at night goes to the street's police first",
			routing.Hypothetical{Grid: "xinhua-taoyuan-01", Category: "noise", At: night},
			[]string{"public-security-xinhua", "environment"}},
		{"noise by day goes to the environment bureau first",
			routing.Hypothetical{Grid: "xinhua-taoyuan-01", Category: "noise", At: day},
			[]string{"environment", "public-security-xinhua"}},
		{"rubbish with rats brings the health commission in",
			routing.Hypothetical{Grid: "xinhua-taoyuan-01", Category: "sanitation", Text: "RATS by the bins", At: day},
			[]string{"urban-management-xinhua", "environment", "health"}},
		{"an issue no rule covers waits for a dispatcher",
			routing.Hypothetical{Grid: "xinhua-taoyuan-01", Category: "other", Urgency: whistlev1.Urgency_URGENCY_URGENT, At: day},
			[]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.Explain(t.Context(), c.h)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("Explain(%+v) summons %v, want %v", c.h, got, c.want)
			}
		})
	}
	_, err = e.Explain(t.Context(), routing.Hypothetical{Grid: "atlantis-01", Category: "noise"})
	if fe := (*apiedge.FieldError)(nil); !errors.As(err, &fe) || fe.Field != "grid_id" {
		t.Errorf("an unknown grid gave %v, want a refusal naming grid_id", err)
	}
}
