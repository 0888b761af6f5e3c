package system

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrDataInUse means another whistle process holds the data folder. Two processes on one
// folder would run two NATS servers on one store and two redis-servers on one append-only
// file, corrupting both, so the second is refused.
var ErrDataInUse = errors.New("the data folder is in use by another whistle process")

// dataLock is the exclusive lock a process holds on its data folder while it uses it.
type dataLock struct{ file *os.File }

// lockDataDir creates dir if needed and takes its lock, without waiting. The lock is an
// advisory flock on dir/whistle.lock, which the kernel releases when the process dies, so a
// crash never leaves the folder locked. The file names the holder's process id for the error.
func lockDataDir(dir string) (*dataLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("system: data folder: %w", err)
	}
	path := filepath.Join(dir, "whistle.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("system: data folder lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (process %s); stop it first", ErrDataInUse, dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("system: data folder lock: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataLock{file: f}, nil
}

// release lets the folder go.
func (l *dataLock) release() error {
	if l == nil {
		return nil
	}
	return l.file.Close() // closing the descriptor drops the flock
}
