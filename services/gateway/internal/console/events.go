package console

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// heartbeat is how often a live page's stream sends a comment when nothing changes, so that
// proxies between keep it open and a browser that left is noticed.
const heartbeat = 25 * time.Second

// startEvents answers a live page's request with a stream of server-sent events and returns what
// flushes it, or writes an error and returns false when the writer cannot stream.
func startEvents(w http.ResponseWriter) (http.Flusher, bool) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported", http.StatusInternalServerError)
		return nil, false
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no") // a proxy in front must not hold the events back
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	return flusher, true
}

// follow reads a watch of the services in a goroutine of its own: each message is handed to
// onMessage (when it is not nil) and then marks the page changed. A page renders once however many
// messages came while it rendered, so changed holds at most one mark. The watch's end, whatever
// ended it, is sent on ended.
func follow[T any](recv func() (T, error), onMessage func(T)) (changed chan struct{}, ended <-chan error) {
	changed = make(chan struct{}, 1)
	end := make(chan error, 1)
	go func() {
		for {
			msg, err := recv()
			if err != nil {
				end <- err
				return
			}
			if onMessage != nil {
				onMessage(msg)
			}
			select {
			case changed <- struct{}{}:
			default: // a render is already due; it will show this message too
			}
		}
	}()
	return changed, end
}

// stillHere is the comment a stream sends when nothing changed.
func stillHere(w http.ResponseWriter) error {
	_, err := fmt.Fprint(w, ": still here\n\n")
	return err
}

// writeEvent writes one server-sent event; every line of data is its own data field.
func writeEvent(w http.ResponseWriter, event, data string) error {
	var b strings.Builder
	b.WriteString("event: " + event + "\n")
	for line := range strings.Lines(data) {
		b.WriteString("data: " + strings.TrimRight(line, "\r\n") + "\n")
	}
	b.WriteString("\n")
	_, err := fmt.Fprint(w, b.String())
	return err
}
