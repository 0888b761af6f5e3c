package redisx_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
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

func TestAServerListensOnAUnixSocketInItsFolderWhichItsURLNamesAndOnTCP(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := shortTempDir(t)
	s, err := redisx.StartServer(ctx, redisx.ServerOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	sock := filepath.Join(dir, "redis.sock")
	if s.Socket() != sock || s.URL() != "unix://"+sock {
		t.Fatalf("Socket() = %q, URL() = %q; want the socket %s in the server's folder", s.Socket(), s.URL(), sock)
	}
	if st, err := os.Stat(sock); err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o700 {
		t.Fatalf("stat %s = %v, %v; want a socket only its owner may use", sock, st, err)
	}
	c, err := redisx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Do(ctx, "CLIENT", "INFO").Text()
	if err != nil || !strings.Contains(info, " flags=U ") { // U: a client on the Unix socket
		t.Fatalf("CLIENT INFO = %q, %v; want a connection on the Unix socket", info, err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	tcp, err := redisx.Connect(ctx, s.TCPURL())
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if got, err := tcp.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k over TCP = %q, %v; want v", got, err)
	}
}

func TestAServerInAFolderTooDeepForASocketPathListensOnTCPAlone(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 110))
	s, err := redisx.StartServer(ctx, redisx.ServerOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if s.Socket() != "" || s.URL() != s.TCPURL() {
		t.Fatalf("Socket() = %q, URL() = %q; want no socket and the TCP URL %s", s.Socket(), s.URL(), s.TCPURL())
	}
	c, err := redisx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

// shortTempDir makes a temporary folder with a short path, removed when the test ends: a socket
// in t.TempDir(), whose name is the test's, may not fit in a socket's path where TMPDIR is long.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "redisx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
