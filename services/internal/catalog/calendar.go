package catalog

import (
	"sync"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/workcal"
)

// Years a working calendar with no notice for them counts as plain weeks (Monday to Friday, the
// nearest known year's hours, no holidays), so that a deadline can always be frozen; `whistle
// calendar YEAR` says which years are assumed.
const (
	firstAssumedYear = 2000
	lastAssumedYear  = 2100
)

// WorkingTime is a city's working calendar as policies with working time count by it.
type WorkingTime struct{ *workcal.Calendar }

// Add returns the instant at which d of working time has passed after from. A span beyond the
// years the calendar assumes (or a negative d) counts calendar time.
func (w WorkingTime) Add(from time.Time, d time.Duration) time.Time {
	t, err := w.Calendar.Add(from, d)
	if err != nil {
		return from.Add(d)
	}
	return t
}

// Between is the working time in [a, b), counted as Add counts it.
func (w WorkingTime) Between(a, b time.Time) time.Duration {
	d, err := w.Calendar.Between(a, b)
	if err != nil {
		return b.Sub(a)
	}
	return d
}

// NewWorkingTime is cal with plain weeks for every year it lacks in the assumed range.
func NewWorkingTime(cal *workcal.Calendar) WorkingTime {
	var years []int
	for y := firstAssumedYear; y <= lastAssumedYear; y++ {
		years = append(years, y)
	}
	return WorkingTime{cal.WithPlainWeeks(years...)}
}

// embeddedWorkingTime is the working calendar of the years Whistle ships, built once.
var embeddedWorkingTime = sync.OnceValues(func() (WorkingTime, error) {
	cal, err := workcal.Embedded()
	if err != nil {
		return WorkingTime{}, err
	}
	return NewWorkingTime(cal), nil
})
