// Package redisx runs redis-server as a child process and connects to Redis, so that
// `whistle up` and the tests use a real Redis without anyone starting one by hand.
package redisx

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrRedisServerMissing means redis-server is not installed; its message says how to
// install it, because that is the one thing the person reading it needs to do.
var ErrRedisServerMissing = errors.New("redis-server not found in PATH: install it with `sudo apt-get install -y redis-server`")

const (
	// startTimeout bounds how long StartServer waits for PING when ctx has no earlier deadline.
	startTimeout = 15 * time.Second
	// stopTimeout is how long Stop lets redis-server finish its append-only file after SIGTERM.
	stopTimeout = 10 * time.Second
	// pingTimeout bounds the PING of Connect when ctx has no earlier deadline.
	pingTimeout = 5 * time.Second
	// logName and outName are the server's log and its stdout/stderr inside Dir;
	// configuration errors reach only the second, before the log file is opened.
	logName = "redis-server.log"
	outName = "redis-server.out"
)

// ServerOptions describes a redis-server child process.
type ServerOptions struct {
	// Dir holds the data files and the log; it is created if missing.
	Dir string
	// Addr is host:port to listen on; empty means 127.0.0.1 on a free port.
	Addr string
	// AppendOnly turns on the append-only file, so that data survives a restart.
	AppendOnly bool
}

// Server is a running redis-server child process.
type Server struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	out  *os.File

	exited  chan struct{} // closed when the process has exited
	waitErr error         // set before exited is closed

	stopOnce sync.Once
	stopErr  error
}

// StartServer starts redis-server with everything on its command line (no config file
// to go stale) and returns once it answers PING. ctx bounds the start only; the server
// runs until Stop. On failure the error carries the tail of the server's log.
func StartServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrRedisServerMissing
	}
	if opts.Dir == "" {
		return nil, errors.New("redisx: ServerOptions.Dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("redisx: data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redisx: data dir: %w", err)
	}
	addr := opts.Addr
	if addr == "" {
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("redisx: address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	addr = net.JoinHostPort(host, port)

	out, err := os.Create(filepath.Join(dir, outName))
	if err != nil {
		return nil, fmt.Errorf("redisx: %w", err)
	}
	appendOnly := "no"
	if opts.AppendOnly {
		appendOnly = "yes"
	}
	cmd := exec.Command(bin,
		"--port", port,
		"--bind", host,
		"--dir", dir,
		"--appendonly", appendOnly,
		"--save", "",
		"--daemonize", "no",
		"--protected-mode", "no",
		"--logfile", filepath.Join(dir, logName),
	)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("redisx: start %s: %w", bin, err)
	}
	s := &Server{addr: addr, dir: dir, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("redisx: redis-server on %s: %w\n%s", addr, err, s.logTail())
	}
	return s, nil
}

// waitReady polls until the server answers as this child process, it exits, or the
// start is out of time. Checking the pid matters: when the port is taken, another
// Redis would answer PING and the start would look successful.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pid, err := probePID(ctx, s.addr)
		if err == nil {
			if pid == s.cmd.Process.Pid {
				return nil
			}
			err = fmt.Errorf("%s is answered by another redis-server (pid %d)", s.addr, pid)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited before answering: %v (last probe: %v)", s.waitErr, err)
		case <-ctx.Done():
			return fmt.Errorf("no answer: %w (last probe: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// probePID asks the Redis at addr for its process id with one INFO command over a
// plain connection; a pooled client would retry and log on every refused dial.
func probePID(ctx context.Context, addr string) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, "INFO server\r\n"); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	head, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil {
		return 0, fmt.Errorf("unexpected reply %q", strings.TrimSpace(head))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("INFO has no process_id")
}

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// URL returns the server's address as a redis:// URL, the form Connect and the
// service configuration take.
func (s *Server) URL() string { return "redis://" + s.addr }

// Stop sends SIGTERM, so that redis-server flushes its append-only file, and kills it
// if it has not exited within a bound. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		defer s.out.Close()
		select {
		case <-s.exited:
			return // already gone; there is nothing to stop
		default:
		}
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.stopErr = fmt.Errorf("redisx: signal redis-server: %w", err)
		}
		select {
		case <-s.exited:
			if s.waitErr != nil {
				s.stopErr = fmt.Errorf("redisx: redis-server exited: %w", s.waitErr)
			}
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.exited
			s.stopErr = fmt.Errorf("redisx: redis-server did not exit within %s of SIGTERM and was killed", stopTimeout)
		}
	})
	return s.stopErr
}

// logTail returns the end of the server's output and log, where redis-server says why
// it did not start.
func (s *Server) logTail() string {
	var tail string
	for _, name := range []string{outName, logName} {
		if t := fileTail(filepath.Join(s.dir, name), 2048); t != "" {
			tail += "--- " + name + " ---\n" + t
		}
	}
	return tail
}

// fileTail returns at most n bytes from the end of a file, or "" if it cannot be read.
func fileTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		if _, err := f.Seek(-n, io.SeekEnd); err != nil {
			return ""
		}
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// freeAddr asks the kernel for a free loopback port. Another process may take it
// before redis-server binds it; on a test machine that is rare enough to accept.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("redisx: find a free port: %w", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// Connect opens a client for a redis:// URL and checks it with a PING bounded in time,
// so that a wrong URL fails at start with the URL named (password masked) rather than
// at the first command.
func Connect(ctx context.Context, url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisx: parse URL %s: %w", redact(url), err)
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redisx: connect to %s: %w", redact(url), err)
	}
	return c, nil
}

// redact masks the password in a URL so that it can appear in errors and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}
