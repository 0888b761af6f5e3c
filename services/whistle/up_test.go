package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/testing/wait"
)

// syncBuffer is a buffer the running command writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestUpServesUntilCtrlCStopsItCleanlyAndStartsAgainOnTheSameFolder(t *testing.T) {
	data := t.TempDir()
	health := regexp.MustCompile(`health\s+(http://\S+/healthz)`)
	for run := range 2 {
		root := newRoot(env{})
		out := &syncBuffer{}
		root.SetOut(out)
		root.SetErr(&syncBuffer{})
		root.SetArgs([]string{"up", "--data", data, "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()

		var url string
		wait.For(t, 30*time.Second, 20*time.Millisecond, func() error {
			m := health.FindStringSubmatch(out.String())
			if m == nil {
				return fmt.Errorf("run %d: up has not said where it listens:\n%s", run, out.String())
			}
			url = m[1]
			return nil
		})
		resp, err := http.Get(url)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("run %d: GET %s = %v, %v; want 200", run, url, resp, err)
		}
		resp.Body.Close()

		cancel() // as Ctrl-C does
		if err := <-done; err != nil {
			t.Fatalf("run %d: up stopped with %v; want a clean stop", run, err)
		}
	}
}
