//go:build unix

package redisx_test

import (
	"syscall"
	"testing"

	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
)

// A terminal's Ctrl-C goes to its whole foreground process group: redis-server must be outside it,
// so that only its parent gets the signal and stops it, instead of the child dying first and its
// supervisor restarting it during the stop.
func TestRedisServerRunsInAProcessGroupOfItsOwn(t *testing.T) {
	srv := redistest.Run(t)
	pgid, err := syscall.Getpgid(srv.PID())
	if err != nil {
		t.Fatal(err)
	}
	if pgid == syscall.Getpgrp() {
		t.Fatalf("redis-server (pid %d) is in its parent's process group %d", srv.PID(), pgid)
	}
}
