package system_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/systemtest"
)

// redisPID asks the system's Redis for its process id.
func redisPID(ctx context.Context, sys *system.System) (int, error) {
	info, err := sys.Deps().Redis.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("INFO has no process_id")
}

// killRedis kills the system's redis-server with SIGKILL and returns its pid.
func killRedis(t *testing.T, sys *system.System) int {
	t.Helper()
	var pid int
	wait.For(t, 20*time.Second, 20*time.Millisecond, func() (err error) {
		pid, err = redisPID(t.Context(), sys)
		return err
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 redis-server %d: %v", pid, err)
	}
	return pid
}

func TestAKilledRedisServerComesBackAndTooManyDeathsEndTheSystem(t *testing.T) {
	t.Parallel()
	sys := systemtest.Start(t, t.TempDir(), clock.NewFake(systemtest.Epoch))
	worker := systemtest.Dial(t, sys, systemtest.GridWorker("xinhua-taoyuan-01"))

	old := killRedis(t, sys)
	wait.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		pid, err := redisPID(t.Context(), sys)
		if err != nil || pid == old {
			return fmt.Errorf("redis-server answers as %d, %v; want a new child", pid, err)
		}
		return nil
	})
	// The system serves again: a raise is applied and read back.
	wait.For(t, 20*time.Second, 50*time.Millisecond, func() error {
		res, err := worker.Intake.RaiseIssue(t.Context(), &whistlev1.RaiseIssueRequest{
			GridId: "xinhua-taoyuan-01", CategoryId: "blocked-drain", Text: "Drain blocked after the restart", RequestId: "after-restart",
		})
		if err != nil {
			return err
		}
		_, err = worker.Intake.GetIssue(t.Context(), &whistlev1.GetIssueRequest{Id: res.GetIssue().GetId()})
		return err
	})

	// Past the limit the system stops restarting it and fails with the reason.
	failed := waitDone(sys)
	for i := range redisx.DefaultMaxRestarts {
		if i > 0 && isClosed(failed) {
			t.Fatalf("the system failed after %d deaths of redis-server; the limit is %d restarts", i+1, redisx.DefaultMaxRestarts)
		}
		old := killRedis(t, sys)
		wait.For(t, 20*time.Second, 20*time.Millisecond, func() error {
			select {
			case <-failed:
				return nil // it gave up: the last kill went past the limit
			default:
			}
			if pid, err := redisPID(t.Context(), sys); err != nil || pid == old {
				return fmt.Errorf("redis-server answers as %d, %v; want a new child", pid, err)
			}
			return nil
		})
	}
	select {
	case <-failed:
	case <-time.After(30 * time.Second):
		t.Fatal("the system kept running after redis-server died past its restart limit")
	}
	if err := sys.Wait(); err == nil || !strings.Contains(err.Error(), "redis-server") || !strings.Contains(err.Error(), "not restarting it again") {
		t.Errorf("the system failed with %v; want the redis-server's deaths named", err)
	}
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitDone returns a channel closed when sys.Wait returns.
func waitDone(sys *system.System) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		_ = sys.Wait()
		close(done)
	}()
	return done
}

func TestTheServicesReachTheRedisChildThroughItsUnixSocket(t *testing.T) {
	t.Parallel()
	// A short folder, so that the socket's path fits wherever TMPDIR is.
	dir, err := os.MkdirTemp("", "whistle-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sys := systemtest.Start(t, dir, clock.NewFake(systemtest.Epoch))
	if want := "unix://" + filepath.Join(dir, "redis", "redis.sock"); sys.RedisURL() != want {
		t.Fatalf("the system runs on %s, want %s", sys.RedisURL(), want)
	}
	clients, err := sys.Deps().Redis.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(clients) {
		if !strings.Contains(line, " flags=U ") { // U: a client on the Unix socket
			t.Errorf("a client of redis-server is not on its Unix socket: %s", line)
		}
	}
}
