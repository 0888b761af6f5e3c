package redisx_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
)

func TestAppendOnlyDataSurvivesARestartOnTheSameDir(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s, err := redisx.StartServer(ctx, redisx.ServerOptions{Dir: dir, AppendOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := redisx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "issue:1", "raised", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	s, err = redisx.StartServer(ctx, redisx.ServerOptions{Dir: dir, Addr: s.Addr(), AppendOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c, err = redisx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.Get(ctx, "issue:1").Result(); err != nil || got != "raised" {
		t.Fatalf("after restart GET = %q, %v; want raised", got, err)
	}
}

func TestStartServerReportsTheLogWhenThePortIsTaken(t *testing.T) {
	t.Parallel()
	taken := redistest.Run(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := redisx.StartServer(ctx, redisx.ServerOptions{Dir: t.TempDir(), Addr: taken.Addr()})
	if err == nil {
		t.Fatal("second server on a taken port started")
	}
	if !strings.Contains(err.Error(), "redis-server.log") {
		t.Fatalf("error carries no log tail: %v", err)
	}
}

func TestStartServerNamesTheInstallCommandWhenRedisIsMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := redisx.StartServer(t.Context(), redisx.ServerOptions{Dir: t.TempDir()})
	if !errors.Is(err, redisx.ErrRedisServerMissing) || !strings.Contains(err.Error(), "apt-get install -y redis-server") {
		t.Fatalf("err = %v, want ErrRedisServerMissing with the install hint", err)
	}
}

func TestConnectNamesTheURLWithoutThePassword(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now, so the PING must fail

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	_, err = redisx.Connect(ctx, "redis://user:s3cret@"+addr+"/0")
	if err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
	if msg := err.Error(); strings.Contains(msg, "s3cret") || !strings.Contains(msg, addr) {
		t.Fatalf("error %q must name %s and hide the password", msg, addr)
	}
}
