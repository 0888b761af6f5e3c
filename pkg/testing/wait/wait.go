// Package wait polls for a condition in tests, so that a test waits exactly as long as
// the system needs and never sleeps for a guessed fixed time.
package wait

import (
	"testing"
	"time"
)

// For calls check every interval until it returns nil, and fails the test with check's
// last error if that has not happened within total. It has the shape of nats-server's
// checkFor, so that eventual conditions read the same way in every test.
func For(t testing.TB, total, interval time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for {
		if err = check(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(interval)
	}
	t.Fatalf("condition not met within %s: %v", total, err)
}
