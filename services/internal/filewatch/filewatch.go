// Package filewatch calls back when configuration files change, so that a service reloads its
// rules or rosters without a restart. It watches each file's folder, since an editor or a
// Kubernetes config map replaces a file rather than writing it in place.
package filewatch

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls changed once one of paths has been written, created or renamed into place and then
// left alone for Settle, until ctx ends. A folder that cannot be watched is logged, naming what the files are for, and the rest
// are still watched. It returns at once when there is nothing to watch.
func Watch(ctx context.Context, paths []string, what string, logger *slog.Logger, changed func(ctx context.Context)) {
	if len(paths) == 0 {
		return
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		logger.Warn("cannot watch the "+what+" files; they are read at start only", "err", err)
		return
	}
	defer w.Close()
	watched := map[string]bool{}
	for _, p := range paths {
		abs, _ := filepath.Abs(p)
		watched[abs] = true
		if err := w.Add(filepath.Dir(abs)); err != nil {
			logger.Warn("cannot watch a "+what+" file", "path", p, "err", err)
		}
	}
	settle := time.NewTimer(0)
	<-settle.C
	for {
		select {
		case <-ctx.Done():
			settle.Stop()
			return
		case err := <-w.Errors:
			logger.Warn("watching the "+what+" files", "err", err)
		case ev := <-w.Events:
			if abs, _ := filepath.Abs(ev.Name); watched[abs] && ev.Has(fsnotify.Write|fsnotify.Create|fsnotify.Rename) {
				settle.Reset(Settle)
			}
		case <-settle.C:
			changed(ctx)
		}
	}
}

// Settle is how long a file must go unchanged before it is read: a file written in place is
// truncated first and filled after, and reading between the two would find it empty.
const Settle = 100 * time.Millisecond
