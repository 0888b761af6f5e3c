package system_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// logBuffer collects log lines written from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p under the lock.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestTheStartLogNamesEveryServiceThatRuns(t *testing.T) {
	var logs logBuffer
	sys, err := system.Start(t.Context(), system.Options{
		DataDir: t.TempDir(),
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatalf("start the system: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sys.Stop(ctx); err != nil {
		t.Errorf("stop the system: %v", err)
	}
	var starting string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, `msg="whistle starting"`) {
			starting = line
		}
	}
	if want := `services="[intake routing department escalation]"`; !strings.Contains(starting, want) {
		t.Errorf("the start log %q does not contain %s", starting, want)
	}
}

func TestMetricsCountTheEmbeddedNATSServersMessagesAndTheRedisRoundTrips(t *testing.T) {
	t.Parallel()
	sys, err := system.Start(t.Context(), system.Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start the system: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = sys.Stop(ctx)
	})
	res, err := http.Get("http://" + sys.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	// The start itself sent NATS messages and Redis commands, so every counter is there.
	for _, want := range []string{
		`whistle_nats_server_messages_total{direction="in"`, `whistle_nats_server_messages_total{direction="out"`,
		`whistle_redis_round_trips_total{kind="command"`, "process_cpu_seconds_total",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}
