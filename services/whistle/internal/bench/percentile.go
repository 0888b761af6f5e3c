package bench

import (
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of ds by the nearest-rank method:
// the smallest value that at least p percent of the values do not exceed. It returns 0 for
// no values and leaves ds as it was.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	rank := int(p / 100 * float64(len(sorted)))
	if float64(rank) < p/100*float64(len(sorted)) {
		rank++ // ceiling, without floating-point surprises for whole ranks
	}
	return sorted[min(max(rank, 1), len(sorted))-1]
}
