// Command whistle runs the Whistle dispatch system and is its command-line client:
// `whistle up` runs every service in one process with embedded NATS and a redis-server
// child, `whistle serve NAME` runs one service against external NATS and Redis,
// `whistle token` mints a caller's token, `whistle replay` rebuilds the derived state
// from the stream, and the remaining commands call the APIs as a person would.
package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/whistle-dispatch/whistle/services/gateway"
	"github.com/whistle-dispatch/whistle/services/internal/apiedge"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/services/internal/catalog"
	"github.com/whistle-dispatch/whistle/services/internal/notify"
	"github.com/whistle-dispatch/whistle/services/internal/roster"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/bench"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/cli"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// Defaults of the server commands' flags.
const (
	defaultDataDir  = "./whistle-data"
	defaultGRPCAddr = "127.0.0.1:7070"
	defaultHTTPAddr = "127.0.0.1:7080"
	// defaultTokenTTL is how long a minted token lasts unless --ttl says otherwise:
	// a working day and a night, so a duty officer's token outlives one shift.
	defaultTokenTTL = 24 * time.Hour
	// defaultOpen311KeyTTL is how long an integrator's API key lasts unless --ttl says
	// otherwise: a year, after which the operator mints the next.
	defaultOpen311KeyTTL = 365 * 24 * time.Hour
	// defaultLinkTTL is how long a sign-in link waits to be opened: long enough to pass it on,
	// short enough that a forgotten one is soon worth nothing.
	defaultLinkTTL = 15 * time.Minute
	// stopTimeout bounds a graceful stop after Ctrl-C or SIGTERM.
	stopTimeout = 30 * time.Second
)

// gcPercent is the garbage collector's target in this program unless GOGC says otherwise: a heap
// may grow by 400 % of what is live before a collection (Go's default is 100 %). Every event
// allocates, and the live heap (the documents the projections keep, NATS's caches) is small
// beside the memory of the machines Whistle runs on. Under whistle bench, collecting took 23 % of
// the CPU at 100 and 14 % at 400, for about three times the resident memory (docs/architecture.md
// has the figures and says how to trade back on a small machine).
const gcPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "whistle:", err)
		os.Exit(1)
	}
}

// run runs the command line until it is done or ctx ends; it touches no signals, so
// that it can be driven from tests.
func run(ctx context.Context) error {
	return newRoot(readEnv()).ExecuteContext(ctx)
}

// env is the process environment the server commands read, read once at start.
type env struct {
	// NATSURL (WHISTLE_NATS_URL) is an external NATS; empty runs NATS embedded.
	NATSURL string
	// RedisURL (WHISTLE_REDIS_URL) is an external Redis, or a Redis Cluster named by addr
	// parameters (see redisURLHelp); empty runs a redis-server child.
	RedisURL string
	// NATSUser and NATSPassword (WHISTLE_NATS_USER, WHISTLE_NATS_PASSWORD) are the
	// credentials for an external NATS: for whistle serve NAME, that service's user in the
	// data folder's nats-users.conf.
	NATSUser, NATSPassword string
	// WebhookSecret (WHISTLE_WEBHOOK_SECRET) signs the notifications posted to --webhook-url.
	WebhookSecret string
}

// readEnv reads the environment into an env; nothing else in the server commands
// reads it.
func readEnv() env {
	return env{
		NATSURL:       os.Getenv("WHISTLE_NATS_URL"),
		RedisURL:      os.Getenv("WHISTLE_REDIS_URL"),
		NATSUser:      os.Getenv("WHISTLE_NATS_USER"),
		NATSPassword:  os.Getenv("WHISTLE_NATS_PASSWORD"),
		WebhookSecret: os.Getenv("WHISTLE_WEBHOOK_SECRET"),
	}
}

// newRoot builds the command tree.
func newRoot(e env) *cobra.Command {
	root := &cobra.Command{
		Use:   "whistle",
		Short: "Whistle: the street blows the whistle, the departments report",
		// Errors are printed once, by main; a usage dump would bury a runtime error.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.AddCommand(upCommand(e), serveCommand(e), tokenCommand(), loginLinkCommand(), open311Command(), replayCommand(e))
	root.AddCommand(cli.Commands()...)
	root.AddCommand(bench.Command())
	root.AddCommand(healthCommand())
	root.AddCommand(clusterCommand(), natsNodeCommand(), redisUsersCommand())
	return root
}

// upCommand runs every service in one process.
func upCommand(e env) *cobra.Command {
	var flags serverFlags
	var sync string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run all of Whistle in this process, with embedded NATS and a redis-server child",
		Long: "Run all of Whistle in this process. NATS runs embedded and Redis as a child process, both\n" +
			"keeping their data in the data folder, unless WHISTLE_NATS_URL or WHISTLE_REDIS_URL name\n" +
			"external ones. Started again on the same folder, Whistle carries on where it stopped,\n" +
			"pending deadlines included. Ctrl-C stops it gracefully.\n\n" + redisURLHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := flags.options(e, newLogger(cmd.ErrOrStderr()))
			var err error
			if opts.Sync, err = natsx.ParseSync(sync); err != nil {
				return fmt.Errorf("up: --sync: %w", err)
			}
			return serveUntilDone(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	flags.add(cmd)
	cmd.Flags().StringVar(&sync, "sync", "default", "how often the embedded NATS flushes JetStream to disk: always (after every write, "+
		"so an acknowledged event survives a power cut), a duration such as 30s, or default (the server's, 2m)")
	return cmd
}

// serveCommand runs one service alone against external NATS and Redis, as in production, or the
// gateway alone in front of them.
func serveCommand(e env) *cobra.Command {
	var flags serverFlags
	var targets gateway.Targets
	roles := append(slices.Clone(system.Names), system.GatewayName)
	cmd := &cobra.Command{
		Use:   "serve NAME",
		Short: "Run one service alone (" + fmt.Sprint(system.Names) + ") against external NATS and Redis, or the gateway",
		Long: "Run one service alone, serving only its gRPC API. It needs WHISTLE_NATS_URL and WHISTLE_REDIS_URL;\n" +
			"WHISTLE_NATS_USER and WHISTLE_NATS_PASSWORD give its NATS user (see nats-users.conf, which whistle up\n" +
			"writes in its data folder). The token signing key is read from the data folder.\n\n" +
			"whistle serve gateway runs the web console and Open311 alone, on --http, in front of services that\n" +
			"run elsewhere: --intake-addr, --routing-addr, --department-addr and --escalation-addr are their gRPC\n" +
			"addresses. It needs WHISTLE_REDIS_URL (its sessions, keys gateway:*) and the data folder's token key,\n" +
			"and no NATS; /healthz answers ok once Redis and every service answer.\n\n" + redisURLHelp,
		Args:      cobra.ExactArgs(1),
		ValidArgs: roles,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !slices.Contains(roles, name) {
				return fmt.Errorf("serve: unknown service %q (want one of %v)", name, roles)
			}
			if err := checkGatewayFlags(cmd, name); err != nil {
				return err
			}
			if name == system.GatewayName {
				return serveGateway(cmd, e, flags, targets)
			}
			if e.NATSURL == "" || e.RedisURL == "" {
				return errors.New("serve: set WHISTLE_NATS_URL and WHISTLE_REDIS_URL, or run everything with embedded servers: whistle up")
			}
			opts := flags.options(e, newLogger(cmd.ErrOrStderr()).With("service", name))
			opts.Services = []string{name}
			return serveUntilDone(cmd.Context(), cmd.OutOrStdout(), opts)
		},
	}
	flags.add(cmd)
	for _, t := range gatewayTargetFlags(&targets) {
		cmd.Flags().StringVar(t.addr, t.flag, "", "serve gateway: the gRPC address of the "+t.service+" service")
	}
	return cmd
}

// gatewayTarget is one of serve gateway's flags naming a service's address.
type gatewayTarget struct {
	flag, service string
	addr          *string
}

// gatewayTargetFlags are serve gateway's flags, one per service, bound to t.
func gatewayTargetFlags(t *gateway.Targets) []gatewayTarget {
	return []gatewayTarget{
		{"intake-addr", "intake", &t.Intake}, {"routing-addr", "routing", &t.Routing},
		{"department-addr", "department", &t.Department}, {"escalation-addr", "escalation", &t.Escalation},
	}
}

// gatewayFlags are the server flags a gateway reads; the others concern only the services.
var gatewayFlags = []string{"data", "http", "pprof", "catalog", "map-tiles"}

// checkGatewayFlags refuses a flag given to the role that does not read it, naming it, so that
// an operator never believes a setting applies where it does not.
func checkGatewayFlags(cmd *cobra.Command, name string) error {
	var targets gateway.Targets
	var refused error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		isTarget := slices.ContainsFunc(gatewayTargetFlags(&targets), func(t gatewayTarget) bool { return t.flag == f.Name })
		switch {
		case refused != nil:
		case name == system.GatewayName && !isTarget && !slices.Contains(gatewayFlags, f.Name):
			refused = fmt.Errorf("serve gateway: --%s is a service's setting; the gateway reads only --%s and the services' addresses",
				f.Name, strings.Join(gatewayFlags, ", --"))
		case name != system.GatewayName && isTarget:
			refused = fmt.Errorf("serve %s: --%s is for serve gateway", name, f.Name)
		}
	})
	return refused
}

// serveGateway runs the gateway alone until ctx ends (Ctrl-C) or it fails.
func serveGateway(cmd *cobra.Command, e env, flags serverFlags, targets gateway.Targets) error {
	for _, t := range gatewayTargetFlags(&targets) {
		if *t.addr == "" {
			return fmt.Errorf("serve gateway: --%s is required: the gRPC address of the %s service", t.flag, t.service)
		}
	}
	if e.RedisURL == "" {
		return errors.New("serve gateway: set WHISTLE_REDIS_URL, where the console keeps its sessions")
	}
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	g, err := system.StartGateway(ctx, system.GatewayOptions{DataDir: flags.data, RedisURL: e.RedisURL, Targets: targets,
		HTTPAddr: flags.httpAddr, PprofAddr: flags.pprofAddr, CatalogPath: flags.catalog, MapTiles: flags.mapTiles,
		Logger: newLogger(cmd.ErrOrStderr()).With("service", system.GatewayName)})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "the whistle gateway is up, in front of intake %s, routing %s, department %s, escalation %s\n",
		targets.Intake, targets.Routing, targets.Department, targets.Escalation)
	printHTTP(out, g.HTTPAddr(), true, g.PprofAddr())
	fmt.Fprintf(out, "Sign in to the console: whistle login-link --data %s --role supervisor --scope city --base http://%s\n", flags.data, g.HTTPAddr())
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
	return runUntilDone(ctx, g)
}

// redisURLHelp is how WHISTLE_REDIS_URL names one Redis or a Redis Cluster (redisx.Connect).
const redisURLHelp = "WHISTLE_REDIS_URL names one Redis, redis://[user:password@]host:port[/db], or a Redis Cluster by\n" +
	"the same URL with an addr parameter for each further node to start from:\n" +
	"  redis://10.0.0.1:6379?addr=10.0.0.2:6379&addr=10.0.0.3:6379\n" +
	"(a cluster named by one node repeats its address: redis://10.0.0.1:6379?addr=10.0.0.1:6379)."

// serverFlags are the flags up and serve share.
type serverFlags struct {
	data, grpcAddr, httpAddr, pprofAddr, catalog, rules, roster string
	verifyWithin                                                time.Duration
	replicas                                                    int
	webhookURL                                                  string
	webhookTimeout                                              time.Duration
	webhookAttempts                                             int
	photoMetadata                                               photoMetadata
	mapTiles                                                    string
}

// photoMetadata is --photo-metadata: strip or keep, and nothing else, so that a mistyped value
// is refused at start instead of read as one or the other.
type photoMetadata string

// String returns the value.
func (m *photoMetadata) String() string { return string(*m) }

// Set takes strip or keep.
func (m *photoMetadata) Set(v string) error {
	if v != "strip" && v != "keep" {
		return fmt.Errorf("want strip or keep, not %q", v)
	}
	*m = photoMetadata(v)
	return nil
}

// Type names the value in help.
func (m *photoMetadata) Type() string { return "strip|keep" }

// add binds the flags to cmd.
func (f *serverFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.data, "data", defaultDataDir, "data folder: token key, and the embedded NATS and Redis files")
	cmd.Flags().StringVar(&f.grpcAddr, "grpc", defaultGRPCAddr, "address of the gRPC API")
	cmd.Flags().StringVar(&f.httpAddr, "http", defaultHTTPAddr, "address of /healthz, /metrics, the web console (/console/) and Open311 (/open311/v2/)")
	cmd.Flags().StringVar(&f.pprofAddr, "pprof", "", "address of the Go profiler's /debug/pprof/ endpoints (off when empty); keep it on loopback")
	cmd.Flags().StringVar(&f.catalog, "catalog", "", "the city's catalog file (areas, departments, categories, SLA policies); default: the sample city")
	cmd.Flags().StringVar(&f.rules, "rules", "", "routing's rules file; default: the sample city's rules")
	cmd.Flags().DurationVar(&f.verifyWithin, "verify-within", 72*time.Hour, "how long a resolved issue waits for its grid's worker to verify it on site before it closes itself")
	cmd.Flags().StringVar(&f.roster, "roster", "", "the units' duty rosters file; default: the sample city's rosters with the sample catalog, none with another")
	addReplicas(cmd, &f.replicas)
	cmd.Flags().StringVar(&f.webhookURL, "webhook-url", "", "where the department posts notifications (to the officer an assignment is pushed to, "+
		"and to raisers of their issues' changes), signed with WHISTLE_WEBHOOK_SECRET; off when empty")
	cmd.Flags().DurationVar(&f.webhookTimeout, "webhook-timeout", notify.DefaultTimeout, "how long one attempt at posting a notification may take")
	cmd.Flags().IntVar(&f.webhookAttempts, "webhook-attempts", notify.DefaultMaxAttempts, "attempts at posting a notification before it is failed")
	f.photoMetadata = "strip"
	cmd.Flags().Var(&f.photoMetadata, "photo-metadata", "strip or keep the metadata of uploaded photos (EXIF, XMP and text, which may say where and when one was taken)")
	cmd.Flags().StringVar(&f.mapTiles, "map-tiles", "", "the city's map tile server for the console's map, as https://HOST/{z}/{x}/{y}.png; "+
		"empty draws the grids' boundaries alone and fetches nothing")
}

// addReplicas binds --replicas, which only a stream's creation reads.
func addReplicas(cmd *cobra.Command, replicas *int) {
	cmd.Flags().IntVar(replicas, "replicas", 1, "replicas of the event streams when they must be created (3 on a three-node NATS cluster); streams that exist are never changed")
}

// options is the system configuration the flags and the environment give.
func (f *serverFlags) options(e env, logger *slog.Logger) system.Options {
	return system.Options{
		DataDir:           f.data,
		NATSURL:           e.NATSURL,
		NATSUser:          e.NATSUser,
		NATSPassword:      e.NATSPassword,
		RedisURL:          e.RedisURL,
		GRPCAddr:          f.grpcAddr,
		HTTPAddr:          f.httpAddr,
		PprofAddr:         f.pprofAddr,
		CatalogPath:       f.catalog,
		RulesPath:         f.rules,
		RosterPath:        f.roster,
		VerifyWithin:      f.verifyWithin,
		Replicas:          f.replicas,
		Logger:            logger,
		KeepPhotoMetadata: f.photoMetadata == "keep",
		MapTiles:          f.mapTiles,
		Notify: notify.Config{
			Webhook:     notify.WebhookConfig{URL: f.webhookURL, Secret: e.WebhookSecret, Timeout: f.webhookTimeout},
			MaxAttempts: f.webhookAttempts,
		},
	}
}

// serveUntilDone starts the system, says where it listens, and stops it gracefully when
// ctx ends (Ctrl-C) or a component fails.
func serveUntilDone(ctx context.Context, out io.Writer, opts system.Options) error {
	sys, err := system.Start(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "whistle is up, data in %s\n", opts.DataDir)
	fmt.Fprintf(out, "  gRPC API  %s\n", sys.GRPCAddr())
	printHTTP(out, sys.HTTPAddr(), sys.ServesConsole(), sys.PprofAddr())
	fmt.Fprintf(out, "Mint a token: whistle token --data %s --role supervisor --scope city\n", opts.DataDir)
	if sys.ServesConsole() {
		fmt.Fprintf(out, "Sign in to the console: whistle login-link --data %s --role supervisor --scope city\n", opts.DataDir)
	}
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
	return runUntilDone(ctx, sys)
}

// printHTTP says what the HTTP listener at addr serves.
func printHTTP(out io.Writer, addr string, console bool, pprofAddr string) {
	fmt.Fprintf(out, "  health    http://%s/healthz\n", addr)
	fmt.Fprintf(out, "  metrics   http://%s/metrics\n", addr)
	if console {
		fmt.Fprintf(out, "  console   http://%s%s\n", addr, system.ConsolePath)
		fmt.Fprintf(out, "  Open311   http://%s%sdiscovery.json\n", addr, system.Open311Path)
	}
	if pprofAddr != "" {
		fmt.Fprintf(out, "  pprof     http://%s/debug/pprof/\n", pprofAddr)
	}
}

// process is a running Whistle process: the services' or the gateway's.
type process interface {
	Wait() error
	Stop(context.Context) error
}

// runUntilDone waits until ctx ends (Ctrl-C) or a component of p fails, then stops p gracefully.
func runUntilDone(ctx context.Context, p process) error {
	failed := make(chan error, 1)
	go func() { failed <- p.Wait() }()
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-failed:
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	return errors.Join(runErr, p.Stop(stopCtx))
}

// tokenCommand mints a caller's token with the data folder's signing key.
func tokenCommand() *cobra.Command {
	var role, scope, subject, data, catalogPath, rosterPath string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token --role ROLE --scope ID",
		Short: "Mint a token for a caller and print it",
		Long: "Mint a token signed with the data folder's key and print it alone, so that it can be\n" +
			"captured: export WHISTLE_TOKEN=$(whistle token --role officer --scope water). The key is made by\n" +
			"`whistle up --data DIR`; token never makes one. The scope must suit the role: a grid id for a\n" +
			"grid-worker, a department id for an officer, an area id (street, community or grid) or city\n" +
			"for a dispatcher or supervisor.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := mintToken(data, catalogPath, rosterPath, role, scope, subject, ttl)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "grid-worker, officer, dispatcher or supervisor")
	f.StringVar(&scope, "scope", "", "grid-worker: a grid id; officer: a department id; dispatcher, supervisor: an area id or city")
	f.StringVar(&subject, "subject", "", "who the token names; default <role>@<scope>, or for an officer of a unit with a roster, whoever is on duty now")
	f.DurationVar(&ttl, "ttl", defaultTokenTTL, "how long the token is valid")
	f.StringVar(&data, "data", defaultDataDir, "data folder holding token.key")
	f.StringVar(&catalogPath, "catalog", "", "the catalog the scope is checked against; default: the sample city")
	f.StringVar(&rosterPath, "roster", "", "the rosters an officer is checked against; default: the sample city's with the sample catalog")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.MarkFlagRequired("scope")
	return cmd
}

// open311Command holds the operator's commands for Open311.
func open311Command() *cobra.Command {
	cmd := &cobra.Command{Use: "open311", Short: "Manage Open311 GeoReport v2 integrators", Args: cobra.NoArgs}
	var name, data string
	var ttl time.Duration
	key := &cobra.Command{
		Use:   "key --name NAME",
		Short: "Mint an integrator's Open311 API key and print it",
		Long: "Mint an API key for an integrator (a 12345 hotline, a residents' mini-program, an enterprise\n" +
			"service window) and print it alone. The integrator passes it as api_key to POST requests at\n" +
			"/open311/v2/; each request it raises records the integrator as its raiser, and its calls are\n" +
			"limited in rate per key. The key is signed with the data folder's key, as tokens are.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := apiedge.CheckRequestID("--name", name); err != nil {
				return fmt.Errorf("open311 key: %w", err)
			}
			if name == gateway.ReaderSubject {
				return fmt.Errorf("open311 key: --name %q is the gateway's own; choose another", name)
			}
			tok, err := mintToken(data, "", "", string(authx.RoleIntegrator), authx.CityScope, name, ttl)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	f := key.Flags()
	f.StringVar(&name, "name", "", "the integrator's name (1 to 64 of A-Z a-z 0-9 . _ : -), recorded as the raiser of its requests")
	f.DurationVar(&ttl, "ttl", defaultOpen311KeyTTL, "how long the key is valid")
	f.StringVar(&data, "data", defaultDataDir, "data folder holding token.key")
	_ = key.MarkFlagRequired("name")
	cmd.AddCommand(key)
	return cmd
}

// mintToken checks the role and the scope against the catalog at catalogPath (empty: the
// sample city) and mints a token with the key in dataDir/token.key. It never creates the key:
// a key made here would sign tokens the server, holding its own, refuses.
func mintToken(dataDir, catalogPath, rosterPath, role, scope, subject string, ttl time.Duration) (string, error) {
	p, authority, err := checkedPrincipal("token", dataDir, catalogPath, rosterPath, role, scope, subject)
	if err != nil {
		return "", err
	}
	return authority.Mint(p, ttl)
}

// checkedPrincipal is the caller a token or a sign-in link names, checked against the catalog
// and the rosters, with the authority of the data folder's key. cmd names the command in errors.
func checkedPrincipal(cmd, dataDir, catalogPath, rosterPath, role, scope, subject string) (authx.Principal, *authx.Authority, error) {
	r, err := authx.ParseRole(role)
	if err != nil {
		return authx.Principal{}, nil, err
	}
	cat, err := catalog.Load(catalogPath)
	if err != nil {
		return authx.Principal{}, nil, err
	}
	kind, ok := scopeKind(cat, scope)
	if d, err := cat.Department(scope); !ok && err == nil {
		units := make([]string, len(d.Units))
		for i, u := range d.Units {
			units[i] = u.ID
		}
		return authx.Principal{}, nil, fmt.Errorf("%s: %q is a department with units; an officer's scope is one of them: %s", cmd, scope, strings.Join(units, ", "))
	}
	if !ok {
		return authx.Principal{}, nil, fmt.Errorf("%s: unknown scope %q: want an area id, a unit id or %s", cmd, scope, catalog.CityScope)
	}
	if err := authx.CheckScope(r, scope, kind); err != nil {
		return authx.Principal{}, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	keyPath := filepath.Join(dataDir, "token.key")
	key, err := authx.LoadKey(keyPath)
	if errors.Is(err, authx.ErrNoKey) {
		return authx.Principal{}, nil, fmt.Errorf("%s: no signing key at %s: `whistle up --data %s` creates it; run %s with the --data of the Whistle that will check it", cmd, keyPath, dataDir, cmd)
	}
	if err != nil {
		return authx.Principal{}, nil, err
	}
	if subject, err = officerSubject(r, scope, subject, cat, rosterPath); err != nil {
		return authx.Principal{}, nil, err
	}
	if subject == "" {
		subject = role + "@" + scope
	}
	return authx.Principal{Subject: subject, Role: r, Scope: scope}, authx.NewAuthority(key), nil
}

// loginLinkCommand prints a one-time link that signs a person in to the web console.
func loginLinkCommand() *cobra.Command {
	var role, scope, subject, data, catalogPath, rosterPath, base string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "login-link --role ROLE --scope ID",
		Short: "Print a one-time link that signs a person in to the web console",
		Long: "Print a link that signs a person in to the web console once, as ROLE over ID (checked as\n" +
			"whistle token checks them), and starts a session of " + gateway.SessionTTL.String() + ". A link that was used, or\n" +
			"has expired (--ttl), is refused. A link is no token: the API refuses it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl <= 0 || ttl > gateway.MaxLinkTTL {
				return fmt.Errorf("login-link: --ttl must be positive and at most %s; got %s", gateway.MaxLinkTTL, ttl)
			}
			if role == string(authx.RoleIntegrator) {
				return errors.New("login-link: an integrator is a system, with an Open311 key (whistle open311 key), not a person of the console")
			}
			p, authority, err := checkedPrincipal("login-link", data, catalogPath, rosterPath, role, scope, subject)
			if err != nil {
				return err
			}
			link, err := authority.MintLink(p, ttl)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s%slogin?link=%s\n", strings.TrimSuffix(base, "/"), gateway.ConsolePath, link)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "grid-worker, officer, dispatcher or supervisor")
	f.StringVar(&scope, "scope", "", "grid-worker: a grid id; officer: a unit id; dispatcher, supervisor: an area id or city")
	f.StringVar(&subject, "subject", "", "who the session names; default <role>@<scope>, or for an officer of a unit with a roster, whoever is on duty now")
	f.DurationVar(&ttl, "ttl", defaultLinkTTL, "how long the link may wait to be opened")
	f.StringVar(&base, "base", "http://"+defaultHTTPAddr, "the console's address as people's browsers reach it")
	f.StringVar(&data, "data", defaultDataDir, "data folder holding token.key")
	f.StringVar(&catalogPath, "catalog", "", "the catalog the scope is checked against; default: the sample city")
	f.StringVar(&rosterPath, "roster", "", "the rosters an officer is checked against; default: the sample city's with the sample catalog")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.MarkFlagRequired("scope")
	return cmd
}

// officerSubject checks an officer's subject against the unit's roster, when it has one, and
// names whoever is on duty now when the subject is left out; other roles keep theirs.
func officerSubject(r authx.Role, unit, subject string, cat *catalog.Catalog, rosterPath string) (string, error) {
	if r != authx.RoleOfficer {
		return subject, nil
	}
	rosters, err := roster.ForCatalog(rosterPath, cat)
	if err != nil || !rosters.Has(unit) {
		return subject, err
	}
	if subject == "" {
		duty := rosters.OnDuty(unit, time.Now())
		if duty.Gap() {
			return rosters.Head(unit), nil
		}
		return duty.People[0], nil
	}
	if !rosters.Member(unit, subject) {
		return "", fmt.Errorf("token: %q is not an officer of unit %s by its roster", subject, unit)
	}
	return subject, nil
}

// scopeKind says what scope names in the catalog: the city, an area of some level or a unit;
// false when it names nothing.
func scopeKind(cat *catalog.Catalog, scope string) (authx.ScopeKind, bool) {
	if scope == catalog.CityScope {
		return authx.ScopeCity, true
	}
	if a, err := cat.Area(scope); err == nil {
		switch a.Level {
		case catalog.LevelGrid:
			return authx.ScopeGrid, true
		case catalog.LevelCommunity:
			return authx.ScopeCommunity, true
		case catalog.LevelStreet:
			return authx.ScopeStreet, true
		case catalog.LevelCity:
			return authx.ScopeCity, true
		}
	}
	if _, err := cat.Unit(scope); err == nil {
		return authx.ScopeUnit, true
	}
	return "", false
}

// replayCommand rebuilds every service's Redis state from the stream.
func replayCommand(e env) *cobra.Command {
	var data, catalogPath, rulesPath string
	var replicas int
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rebuild every service's Redis state from the event stream",
		Long: "Rebuild every service's Redis state from the event stream: each service's keys and consumer\n" +
			"are deleted and each service applies the stream again. A replay only rebuilds: it appends\n" +
			"nothing, reacts to nothing and fires no deadline. Stop `whistle up` first, and give the\n" +
			"--catalog and --rules it runs with.\n\n" + redisURLHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := system.Options{
				DataDir:      data,
				NATSURL:      e.NATSURL,
				NATSUser:     e.NATSUser,
				NATSPassword: e.NATSPassword,
				RedisURL:     e.RedisURL,
				Replicas:     replicas,
				CatalogPath:  catalogPath,
				RulesPath:    rulesPath,
				Logger:       newLogger(cmd.ErrOrStderr()),
			}
			res, err := system.Replay(cmd.Context(), opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			_, err = fmt.Fprintf(out, "replay finished: %d events applied by every service in %s (%.0f events/s)\n",
				res.Events, res.Elapsed.Round(time.Millisecond), res.Rate())
			for _, name := range slices.Sorted(maps.Keys(res.Quarantined)) {
				if n := res.Quarantined[name]; n > 0 && err == nil {
					_, err = fmt.Fprintf(out, "  %s holds %d quarantined issues: see `whistle quarantined`\n", name, n)
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&data, "data", defaultDataDir, "data folder of the embedded NATS and Redis")
	cmd.Flags().StringVar(&catalogPath, "catalog", "", "the city's catalog file that up runs with; default: the sample city")
	cmd.Flags().StringVar(&rulesPath, "rules", "", "routing's rules file that up runs with; default: the sample city's rules")
	addReplicas(cmd, &replicas)
	return cmd
}

// newLogger logs as text to w, which is stderr so that stdout stays for what a
// command prints.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}
