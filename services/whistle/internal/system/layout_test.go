package system_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/testing/redistest"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

func TestEveryServiceHasAKeyLayout(t *testing.T) {
	for _, name := range system.Names {
		if system.KeyLayouts[name] < 1 {
			t.Errorf("%s has no key layout version", name)
		}
	}
}

func TestViewsWrittenInAnotherKeyLayoutAreRefusedUntilReplayed(t *testing.T) {
	srv := redistest.Run(t)
	rdb := redistest.Client(t, srv)
	ctx := t.Context()
	opts := system.Options{DataDir: t.TempDir(), RedisURL: srv.URL(), Logger: slog.New(slog.DiscardHandler)}
	start := func() error {
		sys, err := system.Start(ctx, opts)
		if err != nil {
			return err
		}
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return sys.Stop(stopCtx)
	}
	if err := start(); err != nil {
		t.Fatalf("start on an empty Redis: %v", err)
	}
	for name, v := range system.KeyLayouts {
		if got, err := rdb.Get(ctx, name+":layout").Result(); err != nil || got != strconv.Itoa(v) {
			t.Errorf("%s:layout = %q (%v), want %d recorded on an empty Redis", name, got, err, v)
		}
	}

	// Views an earlier Whistle wrote, which recorded no layout: intake's were layout 1.
	if err := rdb.Del(ctx, "intake:layout").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, "intake:issue:{OLD}", `{"id":"OLD"}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	refused := func(when string) {
		t.Helper()
		err := start()
		if !errors.Is(err, system.ErrOtherLayout) || !strings.Contains(err.Error(), "whistle replay") || !strings.Contains(err.Error(), "intake") {
			t.Fatalf("%s: start answered %v; want ErrOtherLayout naming intake and whistle replay", when, err)
		}
	}
	refused("intake's keys without a recorded layout")
	// A layout this Whistle does not know, as a later one would write, is refused too.
	if err := rdb.Set(ctx, "intake:layout", "99", 0).Err(); err != nil {
		t.Fatal(err)
	}
	refused("intake's keys in layout 99")

	// The replay rebuilds the views from the stream in this layout; then the system starts.
	if _, err := system.Replay(ctx, opts); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if n, err := rdb.Exists(ctx, "intake:issue:{OLD}").Result(); err != nil || n != 0 {
		t.Errorf("a key the stream does not account for outlived the replay (%d, %v)", n, err)
	}
	if err := start(); err != nil {
		t.Fatalf("start after the replay: %v", err)
	}
}
