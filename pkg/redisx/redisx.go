// Package redisx runs redis-server as a child process and connects to Redis, so that
// `whistle up` and the tests use a real Redis without anyone starting one by hand.
package redisx

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/whistle-dispatch/whistle/pkg/netx"
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
	// nodesName is a cluster node's own record of the cluster inside Dir, which it writes.
	nodesName = "nodes.conf"
	// socketName is the server's Unix domain socket inside Dir.
	socketName = "redis.sock"
	// maxSocketPath is the longest socket path StartServer uses. A socket's path must fit in
	// sockaddr_un's sun_path with its terminating NUL: 108 bytes on Linux, 104 on macOS and
	// the BSDs; the smaller bound holds on all of them.
	maxSocketPath = 103
)

// Restart limits of a child that dies: DefaultMaxRestarts deaths within DefaultRestartWindow
// are restarted; one more means something is wrong that restarting will not fix (a full disk,
// a corrupt append-only file, memory exhausted), and the server gives up with the reason.
const (
	DefaultMaxRestarts   = 5
	DefaultRestartWindow = time.Minute
)

var (
	meter = otel.Meter("github.com/whistle-dispatch/whistle/pkg/redisx")
	// restarts counts the deaths of redis-server children, by what followed: restarted or gave_up.
	restarts, _ = meter.Int64Counter("whistle.redis.restarts",
		metric.WithDescription("redis-server children that died, by outcome: restarted, or gave_up past the restart limit."))
)

// ServerOptions describes a redis-server child process.
type ServerOptions struct {
	// Dir holds the data files and the log; it is created if missing.
	Dir string
	// Addr is host:port to listen on; empty means 127.0.0.1 on a free port. The server
	// always listens on TCP, so that tools and people can reach it (redis-cli, whistle bench
	// --redis), and every node of a cluster must; a server that is no cluster node also listens
	// on a Unix domain socket in Dir, which URL names (see URL).
	Addr string
	// AppendOnly turns on the append-only file, so that data survives a restart.
	AppendOnly bool
	// Hold are open files every child inherits, beside its standard streams: a locked file
	// passed here stays locked while any redis-server of it runs, even one whose parent died.
	Hold []*os.File
	// MaxRestarts and RestartWindow bound restarts: a child that dies is started again on the
	// same address and files unless MaxRestarts children already died within RestartWindow;
	// zero means DefaultMaxRestarts and DefaultRestartWindow, and a negative MaxRestarts never
	// restarts.
	MaxRestarts   int
	RestartWindow time.Duration
	// Logger is told of each death, with its exit status; nil logs nothing.
	Logger *slog.Logger
	// Cluster starts the server as a Redis Cluster node (cluster-enabled, its node
	// configuration in Dir), owning no slots until it is given some and meets the others.
	Cluster bool
	// ClusterNodeTimeout is how long a cluster node may be unreachable before the others count
	// it failed, and a replica of a failed master takes its place; zero keeps Redis's 15 s.
	ClusterNodeTimeout time.Duration
}

// Server is a redis-server child process, restarted when it dies within the limits of its
// options. Stop it with Stop; Failed reports when it gave up.
type Server struct {
	addr, dir string
	// socket is the Unix socket's path; empty when the server has none.
	socket string
	// busPort is a cluster node's cluster bus port; empty for a server that is not one.
	busPort string
	opts    ServerOptions
	bin     string
	args    []string
	out     *os.File

	mu       sync.Mutex
	child    *child // the running child; guarded by mu
	stopping bool   // Stop was called; guarded by mu

	failed     chan struct{} // closed when the server gave up restarting
	failErr    error         // set before failed is closed
	supervised chan struct{} // closed when supervise has returned

	stopOnce sync.Once
	stopErr  error
}

// child is one redis-server process.
type child struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // set before exited is closed
}

// StartServer starts redis-server with everything on its command line (no config file
// to go stale) and returns once it answers PING. ctx bounds the start only; the server
// runs until Stop, and is restarted when it dies (see ServerOptions.MaxRestarts). On
// failure the error carries the tail of the server's log.
func StartServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrRedisServerMissing
	}
	if opts.Dir == "" {
		return nil, errors.New("redisx: ServerOptions.Dir is required")
	}
	if opts.MaxRestarts == 0 {
		opts.MaxRestarts = DefaultMaxRestarts
	}
	if opts.RestartWindow <= 0 {
		opts.RestartWindow = DefaultRestartWindow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("redisx: data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redisx: data dir: %w", err)
	}
	if opts.Addr != "" {
		return startAt(ctx, opts, bin, dir, opts.Addr)
	}
	// A free port found here may be taken by another process before redis-server binds it (tests
	// start many servers at once): a server that could not bind its port is tried on another.
	for attempt := 1; ; attempt++ {
		addr, err := netx.FreeAddr()
		if err != nil {
			return nil, err
		}
		s, err := startAt(ctx, opts, bin, dir, addr)
		if err == nil || attempt == freePortAttempts || !strings.Contains(err.Error(), "Address already in use") {
			return s, err
		}
	}
}

// freePortAttempts is how many free ports StartServer tries when one turns out taken.
const freePortAttempts = 3

// startAt starts the server on addr, in dir.
func startAt(ctx context.Context, opts ServerOptions, bin, dir, addr string) (*Server, error) {
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
	s := &Server{
		addr: addr, dir: dir, opts: opts, bin: bin, out: out,
		args: []string{
			"--port", port,
			"--bind", host,
			"--dir", dir,
			"--appendonly", appendOnly,
			"--save", "",
			"--daemonize", "no",
			"--protected-mode", "no",
			"--logfile", filepath.Join(dir, logName),
		},
		failed:     make(chan struct{}),
		supervised: make(chan struct{}),
	}
	if opts.Cluster {
		// A restarted node reads its identity, its slots and its peers back from nodes.conf.
		s.args = append(s.args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, nodesName))
		// The cluster bus listens on a port of its own, by default the client port + 10000,
		// which nothing reserved: another process may hold it. Ask for a free one instead.
		bus, err := netx.FreeAddr()
		if err != nil {
			out.Close()
			return nil, err
		}
		_, s.busPort, _ = net.SplitHostPort(bus)
		s.args = append(s.args, "--cluster-port", s.busPort)
		if opts.ClusterNodeTimeout > 0 {
			s.args = append(s.args, "--cluster-node-timeout", strconv.FormatInt(opts.ClusterNodeTimeout.Milliseconds(), 10))
		}
	} else if s.socket = socketPath(dir); s.socket != "" {
		// Only this user may connect through the socket. A restarted child binds the same path:
		// redis-server removes a socket file left by a child that died before it listens.
		s.args = append(s.args, "--unixsocket", s.socket, "--unixsocketperm", "700")
	}
	c, err := s.start(ctx)
	if err != nil {
		close(s.supervised)
		out.Close()
		return nil, err
	}
	s.child = c
	go s.supervise()
	return s, nil
}

// start starts one child and returns it once it answers; a child that does not is stopped.
func (s *Server) start(ctx context.Context) (*child, error) {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.ExtraFiles = s.opts.Hold
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redisx: start %s: %w", s.bin, err)
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	network, addr := s.network()
	if err := c.waitReady(ctx, network, addr); err != nil {
		_ = c.stop()
		return nil, fmt.Errorf("redisx: redis-server on %s: %w\n%s", s.addr, err, s.logTail())
	}
	return c, nil
}

// supervise restarts the child each time it dies, until Stop, or until more children died
// within the window than the options allow, when it gives up and closes failed. A child that
// dies before it answers counts as a death like any other.
func (s *Server) supervise() {
	defer close(s.supervised)
	var deaths []time.Time // within the window, oldest first
	s.mu.Lock()
	c := s.child
	s.mu.Unlock()
	status := ""
	for {
		if c != nil {
			<-c.exited
			status = exitStatus(c.cmd.ProcessState, c.waitErr)
		}
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		now := time.Now()
		deaths = append(deaths, now)
		for len(deaths) > 0 && now.Sub(deaths[0]) > s.opts.RestartWindow {
			deaths = deaths[1:]
		}
		if len(deaths) > s.opts.MaxRestarts {
			restarts.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", "gave_up")))
			s.fail(fmt.Errorf("redisx: redis-server on %s died %d times within %s (last: %s); not restarting it again\n%s",
				s.addr, len(deaths), s.opts.RestartWindow, status, s.logTail()))
			return
		}
		restarts.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", "restarted")))
		s.opts.Logger.Error("redis-server died; restarting it", "status", status,
			"deaths_in_window", len(deaths), "max_restarts", s.opts.MaxRestarts, "window", s.opts.RestartWindow)
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		next, err := s.start(ctx)
		cancel()
		if err != nil {
			c, status = nil, err.Error()
			continue
		}
		s.mu.Lock()
		if s.stopping { // Stop came while this child started: it is this loop's to stop
			s.mu.Unlock()
			_ = next.stop()
			return
		}
		s.child, c = next, next
		s.mu.Unlock()
		s.opts.Logger.Info("redis-server restarted", "pid", next.cmd.Process.Pid, "addr", s.addr)
	}
}

// fail records why the server gave up and releases Failed.
func (s *Server) fail(err error) {
	s.failErr = err
	close(s.failed)
}

// Failed is closed when the server has given up restarting a child that keeps dying; Err
// then says why.
func (s *Server) Failed() <-chan struct{} { return s.failed }

// Err returns why the server gave up, once Failed is closed; nil before.
func (s *Server) Err() error {
	select {
	case <-s.failed:
		return s.failErr
	default:
		return nil
	}
}

// PID returns the process id of the running child.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.child.cmd.Process.Pid
}

// exitStatus describes how a child ended: its exit code or the signal that killed it.
func exitStatus(ps *os.ProcessState, waitErr error) string {
	if ps == nil {
		return fmt.Sprint(waitErr)
	}
	return ps.String() // "exit status 1", "signal: killed"
}

// waitReady polls until the server answers as this child process on network and addr, it
// exits, or the start is out of time. The address is its socket when it has one, which is what
// its clients use; redis-server listens on every address it was given before it answers on
// any, and exits when it cannot bind one, so an answer there means its TCP port is its own too.
// Checking the pid matters on TCP: when the port is taken, another Redis would answer PING and
// the start would look successful.
func (c *child) waitReady(ctx context.Context, network, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pid, err := probePID(ctx, network, addr)
		if err == nil {
			if pid == c.cmd.Process.Pid {
				return nil
			}
			err = fmt.Errorf("%s is answered by another redis-server (pid %d)", addr, pid)
		}
		select {
		case <-c.exited:
			return fmt.Errorf("exited before answering: %v (last probe: %v)", c.waitErr, err)
		case <-ctx.Done():
			return fmt.Errorf("no answer: %w (last probe: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// probePID asks the Redis at addr for its process id with one INFO command over a
// plain connection; a pooled client would retry and log on every refused dial.
func probePID(ctx context.Context, network, addr string) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
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

// socketPath returns the path of the Unix socket of a server whose files are in dir, or ""
// when that path is too long for a socket (see maxSocketPath), as a test's temporary folder
// or a deep data folder may make it. The server then has TCP alone. A shorter path elsewhere
// (in /tmp, say) would need a name no other server on the machine takes, would be left behind
// by a process that died, and would lie outside the folder a data lock guards; TCP always works
// and costs only some CPU per command more.
func socketPath(dir string) string {
	p := filepath.Join(dir, socketName)
	if len(p) > maxSocketPath {
		return ""
	}
	return p
}

// network returns how the server's clients reach it: its Unix socket when it has one,
// its TCP address otherwise.
func (s *Server) network() (network, addr string) {
	if s.socket != "" {
		return "unix", s.socket
	}
	return "tcp", s.addr
}

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// Socket returns the path of the server's Unix domain socket, or "" when it has none: a
// cluster node, or a server whose Dir is too deep for a socket's path.
func (s *Server) Socket() string { return s.socket }

// URL returns the URL the server's clients should connect with, the form Connect and the
// service configuration take: unix:///path/to/redis.sock when the server has a socket, since a
// command over a Unix socket costs both sides less CPU than over TCP loopback, and
// redis://host:port (TCPURL) when it has none.
func (s *Server) URL() string {
	if s.socket != "" {
		return (&url.URL{Scheme: "unix", Path: s.socket}).String()
	}
	return s.TCPURL()
}

// TCPURL returns the server's TCP address as a redis:// URL, for what cannot use its socket:
// another machine, or a cluster URL, whose addr parameters are host:port.
func (s *Server) TCPURL() string { return "redis://" + s.addr }

// ClusterBusPort is the port a cluster node listens on for its peers (CLUSTER MEET names it);
// empty for a server that is not a cluster node.
func (s *Server) ClusterBusPort() string { return s.busPort }

// Stop sends SIGTERM to the child, so that redis-server flushes its append-only file, kills
// it if it has not exited within a bound, and ends the restarting. It is safe to call more
// than once, and after the server gave up.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		defer s.out.Close()
		s.mu.Lock()
		s.stopping = true
		c := s.child
		s.mu.Unlock()
		s.stopErr = c.stop()
		<-s.supervised
	})
	return s.stopErr
}

// stop ends one child: SIGTERM, then SIGKILL after stopTimeout.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return nil // already gone; there is nothing to stop
	default:
	}
	var err error
	if serr := c.cmd.Process.Signal(syscall.SIGTERM); serr != nil && !errors.Is(serr, os.ErrProcessDone) {
		err = fmt.Errorf("redisx: signal redis-server: %w", serr)
	}
	select {
	case <-c.exited:
		if c.waitErr != nil {
			err = fmt.Errorf("redisx: redis-server exited: %w", c.waitErr)
		}
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		err = fmt.Errorf("redisx: redis-server did not exit within %s of SIGTERM and was killed", stopTimeout)
	}
	return err
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

// Connect opens a client for a Redis URL and checks it with a PING bounded in time, so that a
// wrong URL fails at start with the URL named (password masked) rather than at the first command.
//
// The URL names one server, redis://[user:password@]host:port[/db], or one on this machine by its
// Unix socket, unix://[user:password@]/path/to/redis.sock[?db=N] (go-redis's forms), or a Redis
// Cluster, by the first form with one addr parameter for each further node to start from:
// redis://[user:password@]host:port?addr=host2:port2&addr=host3:port3 (go-redis's
// ParseClusterURL form; a one-node cluster repeats its address, ?addr=host:port). The client
// of a cluster learns the rest of the cluster from those nodes and sends each command to the
// master of its key's slot. A URL of one server that reaches a cluster node is refused, naming
// the form to use: that client would fail on every key of a slot the node does not hold.
//
// The client counts its round trips in whistle.redis.round_trips (see countTrips), so that what
// a command of the system costs in Redis requests can be read off /metrics.
func Connect(ctx context.Context, url string) (redis.UniversalClient, error) {
	c, cluster, err := newClient(url)
	if err != nil {
		return nil, fmt.Errorf("redisx: parse URL %s: %w", redact(url), err)
	}
	countTrips(c, countTrip)
	if err := waitLoaded(ctx, c); err != nil {
		c.Close()
		return nil, fmt.Errorf("redisx: connect to %s: %w", redact(url), err)
	}
	if !cluster {
		info, err := c.Info(ctx, "cluster").Result()
		if err == nil && strings.Contains(info, "cluster_enabled:1") {
			err = errors.New("the server is a Redis Cluster node: name the cluster with addr parameters, " +
				"redis://host1:port1?addr=host2:port2&addr=host3:port3")
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("redisx: connect to %s: %w", redact(url), err)
		}
	}
	return c, nil
}

// IsClusterURL reports whether a Redis URL names a cluster: whether it has addr parameters.
func IsClusterURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Query().Has("addr")
}

// newClient makes the client a URL names, without connecting: a cluster client for a URL with
// addr parameters, a client of one server otherwise.
func newClient(url string) (c redis.UniversalClient, cluster bool, err error) {
	if IsClusterURL(url) {
		opts, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, false, err
		}
		tuneCluster(opts)
		cc := redis.NewClusterClient(opts)
		cc.AddHook(reloadOnFailure{cc})
		return cc, true, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, false, err
	}
	return redis.NewClient(opts), false, nil
}

// waitLoaded PINGs every server of c (each master of a cluster) until each answers. A server
// that is loading its data answers LOADING until it has; it is waited for, up to MaxLoadWait.
func waitLoaded(ctx context.Context, c redis.UniversalClient) error {
	loadCtx, cancel := context.WithTimeout(ctx, MaxLoadWait)
	defer cancel()
	for {
		err := ForEachMaster(loadCtx, c, func(ctx context.Context, server *redis.Client) error {
			pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
			defer cancel()
			return server.Ping(pingCtx).Err()
		})
		if err == nil {
			return nil
		}
		if !strings.HasPrefix(err.Error(), "LOADING") || loadCtx.Err() != nil {
			return err
		}
		select {
		case <-loadCtx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ForEachMaster calls fn with a client of each server that holds keys: the one server of a
// plain client, or each master of a cluster, at once. A command fn sends reaches that server
// alone, so it is how to run what a cluster does not route by key (SCAN, KEYS, FLUSHALL, INFO)
// on every part of the data. It returns the first error.
func ForEachMaster(ctx context.Context, c redis.UniversalClient, fn func(ctx context.Context, server *redis.Client) error) error {
	switch c := c.(type) {
	case *redis.Client:
		return fn(ctx, c)
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	}
	return fmt.Errorf("redisx: a %T is neither a client of one server nor of a cluster", c)
}

// MaxLoadWait bounds how long Connect waits for a server that is loading its data set.
const MaxLoadWait = 5 * time.Minute

// redact masks the password in a URL so that it can appear in errors and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}
