package redisx_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
)

// killAndWaitForRestart kills the running child with SIGKILL and waits until another child
// answers on the same address, returning its pid.
func killAndWaitForRestart(t *testing.T, s *redisx.Server) int {
	t.Helper()
	old := s.PID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", old, err)
	}
	var pid int
	wait.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if pid = s.PID(); pid == old {
			return fmt.Errorf("pid %d was killed and no other child runs yet", old)
		}
		return nil
	})
	return pid
}

func TestAChildKilledIsRestartedWithItsDataOnTheSameAddress(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := redisx.StartServer(ctx, redisx.ServerOptions{Dir: t.TempDir(), AppendOnly: true, MaxRestarts: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	c, err := redisx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "issue:1", "raised", 0).Err(); err != nil {
		t.Fatal(err)
	}
	killAndWaitForRestart(t, s)
	// The client reconnects by itself to the new child, which read the append-only file.
	wait.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		v, err := c.Get(ctx, "issue:1").Result()
		if err != nil || v != "raised" {
			return fmt.Errorf("GET issue:1 = %q, %v; want raised", v, err)
		}
		return nil
	})
	if err := s.Err(); err != nil {
		t.Errorf("after one restart the server says %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("stop after a restart: %v", err)
	}
}

func TestAChildThatKeepsDyingIsGivenUpWithTheReason(t *testing.T) {
	t.Parallel()
	s, err := redisx.StartServer(t.Context(), redisx.ServerOptions{Dir: t.TempDir(), MaxRestarts: 2, RestartWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	killAndWaitForRestart(t, s)
	killAndWaitForRestart(t, s)
	if err := syscall.Kill(s.PID(), syscall.SIGKILL); err != nil { // the third death in the window
		t.Fatal(err)
	}
	select {
	case <-s.Failed():
	case <-time.After(20 * time.Second):
		t.Fatal("the server kept restarting past its limit")
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "died 3 times within 1m0s") || !strings.Contains(err.Error(), "signal: killed") {
		t.Errorf("the server gave up with %v; want the deaths, the window and the last exit status", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("stop after giving up: %v", err)
	}
}

func TestAHeldLockStaysHeldWhileTheChildRunsAfterTheParentLetGo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lockPath := filepath.Join(dir, "whistle.lock")
	lock := func() (*os.File, error) {
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	held, err := lock()
	if err != nil {
		t.Fatal(err)
	}
	s, err := redisx.StartServer(t.Context(), redisx.ServerOptions{Dir: filepath.Join(dir, "redis"), Hold: []*os.File{held}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	held.Close() // the parent lets go, as a parent that died would

	if f, err := lock(); !errors.Is(err, syscall.EWOULDBLOCK) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("a second lock while the child runs: %v; want EWOULDBLOCK", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	f, err := lock()
	if err != nil {
		t.Fatalf("the lock is still held after the child stopped: %v", err)
	}
	f.Close()
}
