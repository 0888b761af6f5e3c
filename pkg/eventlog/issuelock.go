package eventlog

import "sync"

// issueLocks serialises this process's commands on each issue. One issue's events are appended one
// after another, each conditional on the last, so of two commands deciding on an issue at once
// (two departments of a joint whistle reporting in at the same moment) one would lose its append
// and decide again; waiting here instead, the second decides on the state the first left, with no
// refused append. Commands on other issues never wait for each other.
type issueLocks struct {
	mu    sync.Mutex
	locks map[string]*issueLock
}

// issueLock is one issue's lock, shared by the commands that hold it or wait for it.
type issueLock struct {
	sync.Mutex
	users int // holding or waiting: the lock is dropped when none is left
}

// lock takes the issue's lock and returns its release.
func (l *issueLocks) lock(issueID string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*issueLock{}
	}
	il := l.locks[issueID]
	if il == nil {
		il = &issueLock{}
		l.locks[issueID] = il
	}
	il.users++
	l.mu.Unlock()
	il.Lock()
	return func() {
		il.Unlock()
		l.mu.Lock()
		if il.users--; il.users == 0 {
			delete(l.locks, issueID)
		}
		l.mu.Unlock()
	}
}
