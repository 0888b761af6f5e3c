// Package redistest runs a real redis-server for a test, so that code which claims to
// work with Redis is tested against Redis and not a stand-in.
package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/redisx"
)

// Run starts redis-server on a free loopback port with its append-only file in
// t.TempDir() and stops it when the test ends. A missing redis-server fails the test
// with the install hint rather than skipping it, so a green run means Redis was tested.
func Run(t testing.TB) *redisx.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := redisx.StartServer(ctx, redisx.ServerOptions{Dir: t.TempDir(), AppendOnly: true})
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("redistest: %v", err)
		}
	})
	return s
}

// Client connects to s and closes the client when the test ends.
func Client(t testing.TB, s *redisx.Server) *redis.Client {
	t.Helper()
	c, err := redisx.Connect(context.Background(), s.URL())
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
