package natsx

import (
	"fmt"
	"strings"
	"time"
)

// SyncAlwaysName is the Sync value that flushes JetStream's files to disk after every write,
// as nats-server's `sync_interval: always` does.
const SyncAlwaysName = "always"

// Sync is how often an embedded JetStream flushes its files to disk with fsync. Between
// flushes a stored message sits in the operating system's page cache: a crash of the process
// loses nothing, but a power cut or kernel crash may lose what came since the last flush,
// even though its PubAck was sent. The zero Sync keeps the server's own default (every two
// minutes in nats-server 2.x).
type Sync struct {
	// Always flushes after every write, so that a PubAck means the message is on disk.
	Always bool
	// Interval flushes in the background this often; zero is the server's default.
	Interval time.Duration
}

// ParseSync reads a --sync value: empty or "default" for the server's default, "always", or a
// positive Go duration such as "2m" or "10s".
func ParseSync(s string) (Sync, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "", "default":
		return Sync{}, nil
	case SyncAlwaysName:
		return Sync{Always: true}, nil
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Sync{}, fmt.Errorf("natsx: sync %q: want %q, \"default\" or a positive duration such as 2m", s, SyncAlwaysName)
		}
		return Sync{Interval: d}, nil
	}
}

// String returns the value ParseSync reads back.
func (s Sync) String() string {
	switch {
	case s.Always:
		return SyncAlwaysName
	case s.Interval > 0:
		return s.Interval.String()
	default:
		return "default"
	}
}
