package cli

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestLimitsAreWrittenExactlyWithoutRounding(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{30 * time.Second, "30s"},
		{59 * time.Second, "59s"},
		{time.Minute, "1m"},
		{90 * time.Second, "1m30s"},
		{30 * time.Minute, "30m"},
		{2 * time.Hour, "2h"},
		{2*time.Hour + 5*time.Minute, "2h5m"},
		{time.Hour + 1*time.Second, "1h1s"},
		{24 * time.Hour, "1d"},
		{48 * time.Hour, "2d"},
		{168 * time.Hour, "7d"},
		{36 * time.Hour, "1d12h"},
		{360*time.Hour + 30*time.Minute, "15d30m"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		if got := limit(durationpb.New(tt.in)); got != tt.want {
			t.Errorf("limit(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := limit(nil); got != "-" {
		t.Errorf("limit(nil) = %q, want -", got)
	}
}

func TestTimeLeftIsWrittenToTheNearestSecond(t *testing.T) {
	at := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	defer func(old func() time.Time) { now = old }(now)
	now = func() time.Time { return at }
	tests := []struct {
		left time.Duration
		want string
	}{
		{30 * time.Second, "in 30s"},
		{30*time.Second + 900*time.Millisecond, "in 31s"},
		{time.Hour - 30*time.Millisecond, "in 1h"},
		{25 * time.Minute, "in 25m"},
		{-90 * time.Second, "overdue 1m30s"},
		{26 * time.Hour, "in 1d2h"},
		{400 * time.Millisecond, "in <1s"},
		{-400 * time.Millisecond, "overdue <1s"},
	}
	for _, tt := range tests {
		if got := deadline(timestamppb.New(at.Add(tt.left))); got != tt.want {
			t.Errorf("deadline %v from now = %q, want %q", tt.left, got, tt.want)
		}
	}
}
