package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/clock"
	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/platform"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
)

// MinNATSVersion is the first nats-server release that honours the
// Nats-Expected-Last-Subject-Sequence-Subject header (nats-server#5281, in 2.11.0), on which
// every conditional append rests. An older server ignores the header and checks the expected
// sequence against the one subject published to, so two writers of different events of one
// issue would both win; such a server is refused at start.
const MinNATSVersion = "2.11.0"

// natsVersionWhy says in the refusal what needs MinNATSVersion.
const natsVersionWhy = "Whistle's conditional appends need (the Nats-Expected-Last-Subject-Sequence-Subject header)"

// drainTimeout bounds how long closing waits for the NATS connection to drain when the
// caller's context has no earlier deadline.
const drainTimeout = 10 * time.Second

// infra is what every service runs on: NATS (embedded or external), Redis (a child
// process or external), the event log and the catalog. Start and Replay open it the
// same way and close it in the reverse order.
type infra struct {
	// deps are the process's own connections, with NATS as ToolsUser when NATS is
	// embedded: they read the stream and manage consumers, and write no events.
	deps platform.Deps
	// conns are every NATS connection opened, the process's and each service's own.
	conns    []*nats.Conn
	embedded *server.Server // nil when NATS is external
	redisSrv *redisx.Server // nil when Redis is external
	redisURL string         // the Redis the services run on: the child's, or the one given
	lock     *dataLock      // held while embedded NATS or the Redis child use the data folder
	services []platform.Service
}

// openInfra starts or connects to NATS and Redis as opts say, opens the event log and
// builds the chosen services on them; with readOnly, every service's log refuses to append, as
// a rebuild needs. On failure everything opened so far is closed.
func openInfra(ctx context.Context, opts Options, readOnly bool) (_ *infra, err error) {
	if opts.DataDir == "" {
		return nil, errors.New("system: Options.DataDir is required")
	}
	in := &infra{}
	defer func() {
		if err != nil {
			_ = in.close(context.WithoutCancel(ctx))
		}
	}()
	logger := opts.Logger
	if opts.NATSURL == "" || opts.RedisURL == "" {
		if in.lock, err = lockDataDir(opts.DataDir); err != nil {
			return nil, err
		}
	}

	// On the embedded NATS each service connects as its own user, which may publish only
	// the events the service owns; an external NATS takes the credentials the caller gives
	// for every connection (whistle serve runs one service, so they are that service's).
	natsURL := opts.NATSURL
	creds := func(string) natsCreds { return natsCreds{user: opts.NATSUser, password: opts.NATSPassword} }
	if natsURL == "" {
		port := opts.NATSPort
		if port == 0 {
			port = -1 // a free port: nothing outside this process needs to find it
		}
		users, err := loadUsers(opts.DataDir)
		if err != nil {
			return nil, err
		}
		byName := map[string]natsCreds{}
		for _, u := range users {
			byName[u.Name] = natsCreds{user: u.Name, password: u.Password}
		}
		creds = func(name string) natsCreds { return byName[name] }
		in.embedded, err = natsx.StartEmbedded(natsx.EmbeddedOptions{
			StoreDir: filepath.Join(opts.DataDir, "nats"),
			Host:     "127.0.0.1",
			Port:     port,
			Sync:     opts.Sync,
			Users:    users,
		})
		if err != nil {
			return nil, fmt.Errorf("system: embedded NATS: %w", err)
		}
		natsURL = in.embedded.ClientURL()
		logger.Info("embedded NATS started", "url", natsURL, "store", filepath.Join(opts.DataDir, "nats"),
			"sync", opts.Sync.String(), "users", filepath.Join(opts.DataDir, UsersFile))
	}
	nc, err := in.connect(ctx, natsURL, "whistle", creds(ToolsUser))
	if err != nil {
		return nil, err
	}
	in.deps.NATS = nc
	if err := natsx.CheckServerVersion(nc, MinNATSVersion, natsVersionWhy); err != nil {
		return nil, fmt.Errorf("system: %w", err)
	}

	redisURL := opts.RedisURL
	if redisURL == "" {
		in.redisSrv, err = redisx.StartServer(ctx, redisx.ServerOptions{
			Dir:        filepath.Join(opts.DataDir, "redis"),
			AppendOnly: true,
			// The child inherits the folder's lock, so that a redis-server outliving this
			// process still keeps a second whistle off its append-only file.
			Hold:   []*os.File{in.lock.file},
			Logger: logger,
		})
		if err != nil {
			return nil, err // ErrRedisServerMissing says how to install it
		}
		// The services use the child's Unix socket when it has one; its TCP address is for
		// people and tools (redis-cli, whistle bench --redis).
		redisURL = in.redisSrv.URL()
		logger.Info("redis-server started", "url", redisURL, "tcp", in.redisSrv.TCPURL(),
			"dir", filepath.Join(opts.DataDir, "redis"))
	}
	rdb, err := redisx.Connect(ctx, redisURL)
	if err != nil {
		return nil, err
	}
	in.deps.Redis, in.redisURL = rdb, redisURL

	if in.deps.Log, err = eventlog.Open(ctx, nc, eventlog.Config{Replicas: opts.Replicas, Logger: logger}); err != nil {
		return nil, err
	}
	if in.deps.Catalog, err = catalog.Load(opts.CatalogPath); err != nil {
		return nil, fmt.Errorf("system: catalog: %w", err)
	}
	if in.deps.Rosters, err = roster.ForCatalog(opts.RosterPath, in.deps.Catalog); err != nil {
		return nil, fmt.Errorf("system: rosters: %w", err)
	}
	in.deps.Clock = opts.Clock
	in.deps.Logger = logger

	for _, name := range opts.Services {
		build, ok := constructors[name]
		if !ok {
			return nil, fmt.Errorf("system: unknown service %q (want one of %v)", name, Names)
		}
		d := in.deps
		if d.NATS, err = in.connect(ctx, natsURL, "whistle-"+name, creds(name)); err != nil {
			return nil, err
		}
		if d.Log, err = eventlog.Open(ctx, d.NATS, eventlog.Config{Replicas: opts.Replicas}); err != nil {
			return nil, fmt.Errorf("system: %s: %w", name, err)
		}
		if readOnly {
			d.Log = d.Log.ReadOnly() // a replay, which rebuilds the keys in this layout
		} else if err := checkLayout(ctx, d.Redis, name); err != nil {
			return nil, err
		}
		svc, err := build(d, opts)
		if err != nil {
			return nil, fmt.Errorf("system: %s: %w", name, err)
		}
		in.services = append(in.services, svc)
	}
	return in, nil
}

// natsCreds are the user and password of one NATS connection; empty connects without.
type natsCreds struct{ user, password string }

// connect opens a NATS connection with creds and keeps it to be closed with the rest.
//
// Connections to the embedded server go through TCP loopback like any other. In-process
// connections (nats.InProcessServer, a net.Pipe each) were measured with whistle bench and cost
// more CPU per lifecycle, not less: 0.2 to 0.7 ms more of about 24 ms in three runs side by
// side with the same build on TCP, and 0.4 to 0.5 ms more of about 11 ms, with a third more
// Redis round trips, once consumers acknowledged by batch. A pipe has no buffer: every write
// waits until a goroutine on the other side has read it. That halved the CPU of one JetStream
// publish at a time with its delivery and ack, but saved nothing with sixteen publishers at
// once, when messages travel in batches, as they do in Whistle under load.
func (in *infra) connect(ctx context.Context, url, name string, creds natsCreds) (*nats.Conn, error) {
	var opts []nats.Option
	if creds.user != "" {
		opts = append(opts, nats.UserInfo(creds.user, creds.password))
	}
	nc, err := natsx.Connect(ctx, url, name, opts...)
	if err != nil {
		return nil, err
	}
	in.conns = append(in.conns, nc)
	return nc, nil
}

// healthy reports whether NATS is connected, Redis answers and no service's consumer is stuck
// retrying a failure, which is what /healthz promises: a process that is not healthy serves
// views that no longer follow the stream.
func (in *infra) healthy(ctx context.Context) error {
	for _, svc := range in.services {
		if err := eventlog.Failing(svc.Name()); err != nil {
			return err
		}
	}
	for _, nc := range in.conns {
		if s := nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("NATS connection %s is %s", nc.Opts.Name, s)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := in.deps.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// close drains NATS, so that acknowledgements in flight reach the server, then stops
// Redis and the embedded NATS server. It closes only what was opened.
func (in *infra) close(ctx context.Context) error {
	var errs []error
	// The services' connections first, so that their last appends and acks are sent while
	// the process's own connection still answers for them.
	for _, nc := range slices.Backward(in.conns) {
		errs = append(errs, drain(ctx, nc))
	}
	if rdb := in.deps.Redis; rdb != nil {
		if err := rdb.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			errs = append(errs, fmt.Errorf("system: close redis client: %w", err))
		}
	}
	if in.redisSrv != nil {
		errs = append(errs, in.redisSrv.Stop())
	}
	if in.embedded != nil {
		in.embedded.Shutdown()
		in.embedded.WaitForShutdown()
	}
	errs = append(errs, in.lock.release())
	return errors.Join(errs...)
}

// drain drains nc and waits until it is closed, or closes it at once when ctx or
// drainTimeout runs out first.
func drain(ctx context.Context, nc *nats.Conn) error {
	if nc.IsClosed() {
		return nil
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return fmt.Errorf("system: drain NATS: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		nc.Close()
		return fmt.Errorf("system: drain NATS: %w", ctx.Err())
	}
}

// withDefaults fills in the clock, logger and services a caller may leave out, so that
// the configuration logged at start is the one that runs.
func withDefaults(opts Options) Options {
	if len(opts.Services) == 0 {
		opts.Services = slices.Clone(Names)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	return opts
}

// logConfig logs the options once at start, URLs with their passwords masked.
func logConfig(opts Options, what string) {
	opts.Logger.Info(what,
		"data", opts.DataDir,
		"nats", describeURL(opts.NATSURL, "embedded"),
		"nats_user", opts.NATSUser,
		"redis", describeURL(opts.RedisURL, "redis-server child"),
		"grpc", opts.GRPCAddr,
		"http", opts.HTTPAddr,
		"services", opts.Services,
		"replicas", opts.Replicas,
		"webhook", describeURL(opts.Notify.Webhook.URL, "off"),
	)
}

// describeURL masks the password in a URL list (NATS takes several, comma-separated),
// or names what runs instead when the URL is empty.
func describeURL(raw, instead string) string {
	if raw == "" {
		return instead
	}
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "<unparseable URL>"
			continue
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}
