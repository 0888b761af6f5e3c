package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/whistle-dispatch/whistle/pkg/otelx"
)

// ending is how a process ends: the first component that fails, or a stop. Wait returns when
// either happens.
type ending struct {
	logger *slog.Logger

	mu   sync.Mutex
	err  error         // the first failure of a component; guarded by mu
	done chan struct{} // closed when a component failed or the stop finished
	once sync.Once
}

func newEnding(logger *slog.Logger) *ending {
	return &ending{logger: logger, done: make(chan struct{})}
}

// fail records the first failure of a component and releases Wait.
func (e *ending) fail(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
	e.logger.Error("whistle component failed", "err", err)
	e.stopped()
}

// stopped releases Wait once the stop has finished.
func (e *ending) stopped() { e.once.Do(func() { close(e.done) }) }

// Wait blocks until a component fails, returning its error, or until Stop has finished,
// returning nil. After a failure the caller still calls Stop to release the rest.
func (e *ending) Wait() error {
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// front is a process's HTTP listener, with /healthz and /metrics, and the profiler's listener
// when one is asked for.
type front struct {
	httpLis  net.Listener
	pprofLis net.Listener // nil unless a profiler address is given
	mux      *http.ServeMux
	srv      *http.Server
}

// openFront listens on httpAddr and, when it is not empty, pprofAddr, and serves /healthz, which
// answers healthy's verdict, and tel's /metrics. Mount the rest on its mux before serve.
func openFront(httpAddr, pprofAddr string, healthy func(context.Context) error, tel *otelx.Telemetry) (_ *front, err error) {
	f := &front{mux: http.NewServeMux()}
	if f.httpLis, err = listen(httpAddr); err != nil {
		return nil, fmt.Errorf("system: HTTP: %w", err)
	}
	if pprofAddr != "" {
		if f.pprofLis, err = listen(pprofAddr); err != nil {
			_ = f.httpLis.Close()
			return nil, fmt.Errorf("system: pprof: %w", err)
		}
		f.mux.Handle("/debug/pprof/", profilerOnly(f.pprofLis))
	}
	f.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := healthy(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	f.mux.Handle("GET /metrics", tel.MetricsHandler())
	f.srv = &http.Server{Handler: f.mux, ReadHeaderTimeout: httpReadHeaderTimeout}
	return f, nil
}

// serve serves every listener in goroutines of running until shutdown; a listener that fails
// fails the process.
func (f *front) serve(running *sync.WaitGroup, e *ending) {
	for _, lis := range []net.Listener{f.httpLis, f.pprofLis} {
		if lis == nil {
			continue
		}
		running.Go(func() {
			if err := f.srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
				e.fail(fmt.Errorf("system: HTTP server on %s: %w", lis.Addr(), err))
			}
		})
	}
}

// shutdown lets requests in flight finish within ctx, then closes what is left.
func (f *front) shutdown(ctx context.Context) error {
	if err := f.srv.Shutdown(ctx); err != nil {
		_ = f.srv.Close()
		return fmt.Errorf("system: HTTP shutdown: %w", err)
	}
	return nil
}

// close closes the listeners of a start that failed before serving.
func (f *front) close() error {
	var errs []error
	for _, l := range []net.Listener{f.httpLis, f.pprofLis} {
		if l != nil {
			errs = append(errs, l.Close())
		}
	}
	return errors.Join(errs...)
}

// pprofAddr returns the address the profiler's endpoints listen on, "" when they are off.
func (f *front) pprofAddr() string {
	if f.pprofLis == nil {
		return ""
	}
	return f.pprofLis.Addr().String()
}
