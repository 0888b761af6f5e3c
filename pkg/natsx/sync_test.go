package natsx_test

import (
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/natsx"
)

func TestParseSyncReadsAlwaysDefaultAndDurations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    natsx.Sync
		wantErr bool
	}{
		{in: "", want: natsx.Sync{}},
		{in: "default", want: natsx.Sync{}},
		{in: "always", want: natsx.Sync{Always: true}},
		{in: "ALWAYS", want: natsx.Sync{Always: true}},
		{in: "2m", want: natsx.Sync{Interval: 2 * time.Minute}},
		{in: "500ms", want: natsx.Sync{Interval: 500 * time.Millisecond}},
		{in: "0s", wantErr: true},
		{in: "-1s", wantErr: true},
		{in: "sometimes", wantErr: true},
	}
	for _, tc := range tests {
		got, err := natsx.ParseSync(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseSync(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err == nil {
			if back, _ := natsx.ParseSync(got.String()); back != got {
				t.Errorf("ParseSync(%q).String() = %q reads back as %+v", tc.in, got.String(), back)
			}
		}
	}
}

func TestTheEmbeddedServerRunsJetStreamWithTheSyncItIsGiven(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sync         natsx.Sync
		wantAlways   bool
		wantInterval time.Duration
	}{
		{sync: natsx.Sync{}, wantInterval: 2 * time.Minute}, // the server's default
		{sync: natsx.Sync{Always: true}, wantAlways: true},
		{sync: natsx.Sync{Interval: 10 * time.Second}, wantInterval: 10 * time.Second},
	}
	for _, tc := range tests {
		s, err := natsx.StartEmbedded(natsx.EmbeddedOptions{StoreDir: t.TempDir(), Port: -1, Sync: tc.sync})
		if err != nil {
			t.Fatal(err)
		}
		jsc := s.JetStreamConfig()
		s.Shutdown()
		s.WaitForShutdown()
		if jsc == nil {
			t.Fatalf("sync %s: JetStream is not enabled", tc.sync)
		}
		if jsc.SyncAlways != tc.wantAlways || (tc.wantInterval != 0 && jsc.SyncInterval != tc.wantInterval) {
			t.Errorf("sync %s: server runs always=%v interval=%s; want always=%v interval=%s",
				tc.sync, jsc.SyncAlways, jsc.SyncInterval, tc.wantAlways, tc.wantInterval)
		}
	}
}
