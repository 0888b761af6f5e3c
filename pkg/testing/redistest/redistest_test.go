package redistest_test

import (
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
)

func TestRunStartsARedisThatTheClientCanUse(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t, redistest.Run(t))
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(t.Context(), "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k = %q, %v; want v", got, err)
	}
}
