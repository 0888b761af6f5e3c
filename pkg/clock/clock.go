// Package clock lets components read time through an interface, so that deadlines and
// SLA timers can be tested in virtual time instead of by sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock is the time source a component takes instead of calling the time package.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// Real returns the Clock backed by the time package, for production.
func Real() Clock { return realClock{} }

// realClock reads the machine's clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Fake is a Clock whose time moves only when a test moves it. It is safe for use by
// several goroutines, so a test can advance it while the code under test waits on it.
type Fake struct {
	mu      sync.Mutex // guards the fields below
	now     time.Time
	waiters []waiter
}

// waiter is one pending After channel.
type waiter struct {
	at time.Time
	ch chan time.Time // buffered 1, so firing never blocks the test
}

// NewFake returns a Fake clock that reads start until it is moved.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake current time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// After returns a channel that receives the fake time once the clock reaches Now()+d.
// A d of zero or less fires at once, as time.After does.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- f.now
		return ch
	}
	f.waiters = append(f.waiters, waiter{at: f.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock forward by d and fires every After channel that has come due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(f.now.Add(d))
}

// Set moves the clock to t, forward or back, and fires every After channel that has
// come due; moving back fires nothing.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setLocked(t)
}

// setLocked sets the time and fires due waiters. Lock must be held.
func (f *Fake) setLocked(t time.Time) {
	f.now = t
	pending := f.waiters[:0]
	for _, w := range f.waiters {
		if w.at.After(t) {
			pending = append(pending, w)
			continue
		}
		w.ch <- t
	}
	clear(f.waiters[len(pending):]) // drop fired channels so they can be collected
	f.waiters = pending
}

// Waiters returns how many After channels have not fired yet, so that a test can wait
// until the code under test is asleep before it advances the clock.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}
