// Package cluster runs Whistle on one machine as it runs in production, each part a process of
// its own: three NATS servers clustered with JetStream (the whistle program's own embedded
// server package, run by its hidden nats-node command), a Redis Cluster of three masters each
// with a replica, and replicas of every service (`whistle serve NAME`), each on its own ports.
// Up starts them and writes what it started to the cluster folder; Down stops them from what it
// finds there. `whistle cluster up|down` and the fault tests both use it.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/pkg/netx"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// Sizes of the cluster.
const (
	// NATSNodes is how many NATS servers run; the streams keep a replica on each.
	NATSNodes = 3
	// RedisMasters is how many Redis masters share the slots; each has one replica.
	RedisMasters = 3
	// DefaultReplicas is how many processes of each service run.
	DefaultReplicas = 2
)

// Timeouts that bound how soon the cluster notices a dead member. RedisNodeTimeout is how long
// a Redis master may be unreachable before its replica is promoted; the failover follows it by
// about a second more (the replica's election delay), which keeps it within what the fault tests
// allow a recovery.
const (
	RedisNodeTimeout = 1000 * time.Millisecond
	// readyTimeout bounds how long Up waits for each part to be ready.
	readyTimeout = 90 * time.Second
	// stopTimeout is how long Down lets a process stop after SIGTERM before it kills it.
	stopTimeout = 15 * time.Second
)

// StateFile is the file in the cluster folder that lists what runs: Down reads it.
const StateFile = "cluster.json"

// Options describe a cluster to start.
type Options struct {
	// Dir is the cluster folder: every process's files and logs, and StateFile. Required.
	Dir string
	// Binary is the whistle program the services and NATS nodes run. Required.
	Binary string
	// BasePort, when above 0, numbers the ports from it (see ports); 0 takes free ports.
	BasePort int
	// Replicas is how many processes of each service run; 0 means DefaultReplicas.
	Replicas int
	// CatalogPath and RulesPath are given to every service (--catalog, --rules); empty means
	// the sample city.
	CatalogPath, RulesPath string
	// RosterPath is given to every service (--roster); empty means the sample city's rosters
	// with the sample catalog, and none with another.
	RosterPath string
	// Logger is told what starts; nil logs nothing.
	Logger *slog.Logger
}

// Proc is one process of the cluster.
type Proc struct {
	// Role is "nats", "redis" or the service's name.
	Role string `json:"role"`
	// Name names the process in the cluster: nats-1, redis-4, intake-2.
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// Addr is where its clients reach it: NATS's client port, Redis's port, a service's gRPC.
	Addr string `json:"addr"`
	// Peer is where its peers reach it: a NATS route, a Redis cluster bus; a service's HTTP
	// (/healthz, /metrics).
	Peer string `json:"peer"`
	// Dir holds its files and its log.
	Dir string `json:"dir"`
	// Monitor is a NATS node's monitoring port (/healthz, /jsz, /varz); empty for the others.
	Monitor string `json:"monitor,omitempty"`
	// Command is the program it runs and its arguments, as Restart starts it again. A Redis
	// node's hold passwords, as the rest of the state file does.
	Command []string `json:"command,omitempty"`
}

// Log is the path of the process's output.
func (p Proc) Log() string { return filepath.Join(p.Dir, "out.log") }

// State is what a cluster runs, as StateFile records it. It holds passwords: the file is 0600.
type State struct {
	Dir      string `json:"dir"`
	NATS     []Proc `json:"nats"`
	Redis    []Proc `json:"redis"`
	Services []Proc `json:"services"`
	// NATSURL names every NATS node, comma-separated, as WHISTLE_NATS_URL takes it.
	NATSURL string `json:"nats_url"`
	// RedisPasswords are the Redis users' passwords: "default" (the operator's) and one per
	// service.
	RedisPasswords map[string]string `json:"redis_passwords"`
	// DataDir is the services' data folder, holding the token key and NATS users.
	DataDir string `json:"data_dir"`

	mu sync.Mutex
}

// ports numbers the ports of a cluster from base: NATS clients base+1.., NATS routes base+11..,
// NATS monitoring base+21.., Redis base+31.. with their cluster buses base+41.., the services'
// gRPC base+101.. and HTTP base+201.., in the order of system.Names, replica by replica, and the
// gateways' HTTP base+301...
// Without a base it draws free ports, none twice: a port drawn for a process not yet started is
// free to every later draw until that process binds it.
type ports struct {
	base  int
	drawn map[int]bool
}

func newPorts(base int) *ports { return &ports{base: base, drawn: map[int]bool{}} }

func (p *ports) at(offset int) (string, error) {
	if p.base > 0 {
		return "127.0.0.1:" + strconv.Itoa(p.base+offset), nil
	}
	for {
		port, err := netx.FreePort()
		if err != nil {
			return "", err
		}
		if !p.drawn[port] {
			p.drawn[port] = true
			return "127.0.0.1:" + strconv.Itoa(port), nil
		}
	}
}

// pair is the ports at two offsets: a process's address and its peer's.
func (p *ports) pair(addr, peer int) (string, string, error) {
	a, err := p.at(addr)
	if err != nil {
		return "", "", err
	}
	b, err := p.at(peer)
	return a, b, err
}

// startListening starts a process through spawn, which draws its ports, and waits until it
// listens on them (see listening).
func (s *State) startListening(ctx context.Context, p *ports, spawn func() (Proc, error)) (Proc, error) {
	proc, err := spawn()
	if err != nil {
		return proc, err
	}
	return listening(ctx, p, proc, spawn)
}

// listening waits until proc, started by spawn, listens on its address and its peer's. Another
// program may bind a drawn port between the draw and the process binding it (tests start many
// servers at once), so a process that ended saying an address is in use is spawned again on new
// ports, up to bindAttempts times in all. With numbered ports it is not: they would be taken again.
func listening(ctx context.Context, p *ports, proc Proc, spawn func() (Proc, error)) (Proc, error) {
	for attempt := 1; ; attempt++ {
		err := awaitListening(ctx, proc)
		if err == nil {
			return proc, nil
		}
		tail := logTail(proc)
		if !errors.Is(err, errStopped) || p.base > 0 || attempt == bindAttempts || !strings.Contains(strings.ToLower(tail), "address already in use") {
			return proc, fmt.Errorf("cluster: %s does not listen on %s (see %s): %w\n%s", proc.Name, proc.Addr, proc.Log(), err, tail)
		}
		if proc, err = spawn(); err != nil {
			return proc, err
		}
	}
}

// bindAttempts is how many times startListening spawns a process whose drawn port was taken.
const bindAttempts = 3

// awaitListening waits until proc accepts connections on its address and, if it has one, its
// peer's, or until it ends (errStopped).
func awaitListening(ctx context.Context, proc Proc) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	return until(ctx, func() error {
		if !alive(proc) {
			return errStopped
		}
		for _, addr := range []string{proc.Addr, proc.Peer} {
			if addr == "" {
				continue
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			_ = c.Close()
		}
		return nil
	})
}

// Load reads the state of the cluster in dir.
func Load(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	s := &State{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", filepath.Join(dir, StateFile), err)
	}
	return s, nil
}

// save writes the state whole (write, then rename), so that Down always finds a readable list.
func (s *State) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(s.Dir, StateFile)
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return os.Rename(path+".tmp", path)
}

// All returns every process of the cluster.
func (s *State) All() []Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []Proc
	all = append(all, s.Services...)
	all = append(all, s.Redis...)
	return append(all, s.NATS...)
}

// Up starts a cluster in opts.Dir and returns once every part is ready: the NATS nodes have a
// JetStream meta leader, the Redis Cluster serves every slot with a replica behind each master,
// and every service's /healthz answers ok. A folder that holds a cluster, running or stopped, is
// refused. What a start that fails has started is stopped again.
func Up(ctx context.Context, opts Options) (_ *State, err error) {
	if opts.Dir == "" || opts.Binary == "" {
		return nil, errors.New("cluster: Options.Dir and Options.Binary are required")
	}
	if opts.Replicas <= 0 {
		opts.Replicas = DefaultReplicas
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if old, err := Load(dir); err == nil {
		for _, p := range old.All() {
			if alive(p) {
				return nil, fmt.Errorf("cluster: %s runs in %s (pid %d): whistle cluster down first", p.Name, dir, p.PID)
			}
		}
		// Its Redis nodes would come back as the old cluster's, refusing the new one's slots.
		return nil, fmt.Errorf("cluster: %s holds the files of a cluster that was stopped: remove the folder to start a new one, or give another --dir", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*readyTimeout)
	defer cancel()
	s := &State{Dir: dir, DataDir: filepath.Join(dir, "whistle"), RedisPasswords: map[string]string{}}
	defer func() {
		if err != nil {
			_ = s.stop(opts.Logger)
		}
	}()
	if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	// The token key first: the replicas would each make one of their own, and only one can win.
	if _, err := authx.LoadOrCreateKey(filepath.Join(s.DataDir, "token.key")); err != nil {
		return nil, err
	}
	p := newPorts(opts.BasePort)
	if err := s.startNATS(ctx, opts, p); err != nil {
		return nil, err
	}
	if err := s.startRedis(ctx, opts, p); err != nil {
		return nil, err
	}
	if err := s.startServices(ctx, opts, p); err != nil {
		return nil, err
	}
	if err := s.startGateways(ctx, opts, p); err != nil {
		return nil, err
	}
	return s, nil
}

// start starts one process of the cluster in a process group of its own, so that a terminal's
// Ctrl-C aimed at whistle cluster up does not reach it, with its output in its folder, and
// records it, in place of the process of the same name if the state lists one (Restart). The
// process outlives the one that started it; this one reaps it if it dies first.
func (s *State) start(p Proc, bin string, args, env []string) (Proc, error) {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return p, fmt.Errorf("cluster: %w", err)
	}
	out, err := os.OpenFile(p.Log(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return p, fmt.Errorf("cluster: %w", err)
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return p, fmt.Errorf("cluster: start %s: %w", p.Name, err)
	}
	go func() { _ = cmd.Wait() }()
	p.PID = cmd.Process.Pid
	p.Command = append([]string{bin}, args...)
	s.mu.Lock()
	list := &s.Services
	switch p.Role {
	case "nats":
		list = &s.NATS
	case "redis":
		list = &s.Redis
	}
	if i := slices.IndexFunc(*list, func(q Proc) bool { return q.Name == p.Name }); i >= 0 {
		(*list)[i] = p
	} else {
		*list = append(*list, p)
	}
	s.mu.Unlock()
	return p, s.save()
}

// Restart starts a process of the cluster that has stopped (Kill) again, with the command and
// environment it was first started with, on the same ports and files, and returns it with its
// new pid. It does not wait until the process is ready: WaitHealthy does, for a service. A
// process that still runs is refused.
func (s *State) Restart(p Proc) (Proc, error) {
	cur, ok := s.Proc(p.Name)
	if !ok {
		return p, fmt.Errorf("cluster: no process %s", p.Name)
	}
	if alive(cur) {
		return cur, fmt.Errorf("cluster: %s runs (pid %d): kill it first", cur.Name, cur.PID)
	}
	if len(cur.Command) == 0 {
		return cur, fmt.Errorf("cluster: %s was started without its command recorded", cur.Name)
	}
	var env []string
	switch cur.Role {
	case "nats", "redis":
	case system.GatewayName:
		env = s.gatewayEnv()
	default:
		var err error
		if env, err = s.serviceEnv(cur.Role); err != nil {
			return cur, err
		}
	}
	return s.start(cur, cur.Command[0], cur.Command[1:], env)
}

// Down stops every process of the cluster in dir: the services first, so that their last
// appends and acknowledgements reach NATS, then Redis and NATS. Each gets SIGTERM, and SIGKILL
// when it has not stopped within a bound. A cluster folder without a state file has nothing
// running.
func Down(dir string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s, err := Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.stop(logger)
}

// stop stops every process the state lists, in the order of All.
func (s *State) stop(logger *slog.Logger) error {
	var errs []error
	groups := [][]Proc{s.Services, s.Redis, s.NATS}
	for _, g := range groups {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, p := range g {
			wg.Go(func() {
				if err := stopProc(p); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				logger.Info("stopped", "process", p.Name, "pid", p.PID)
			})
		}
		wg.Wait()
	}
	return errors.Join(errs...)
}

// stopProc ends one process: SIGTERM, then SIGKILL after stopTimeout.
func stopProc(p Proc) error {
	if !alive(p) {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	deadline := time.Now().Add(stopTimeout)
	for time.Now().Before(deadline) {
		if !alive(p) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cluster: kill %s (pid %d): %w", p.Name, p.PID, err)
	}
	for range 100 {
		if !alive(p) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cluster: %s (pid %d) did not end", p.Name, p.PID)
}

// Kill ends a process of the cluster at once with SIGKILL, as a crash would, and waits until it
// has gone.
func (s *State) Kill(p Proc) error {
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cluster: kill %s (pid %d): %w", p.Name, p.PID, err)
	}
	for range 250 {
		if !alive(p) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cluster: %s (pid %d) did not end", p.Name, p.PID)
}

// alive reports whether p's process still runs and is p's: a pid recorded long ago may have
// been given to another process since, so on Linux the process must work in p's folder, where it
// was started (its command line will not do: redis-server rewrites its own). A zombie (exited,
// not yet reaped) counts as gone.
func alive(p Proc) bool {
	if p.PID <= 0 || syscall.Kill(p.PID, 0) != nil {
		return false
	}
	proc := "/proc/" + strconv.Itoa(p.PID)
	stat, err := os.ReadFile(proc + "/stat")
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist) // no /proc: trust the signal
	}
	if i := strings.LastIndexByte(string(stat), ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
		return false
	}
	cwd, err := os.Readlink(proc + "/cwd")
	return err == nil && strings.HasPrefix(cwd, p.Dir)
}

// natsConfig is one NATS node's configuration file.
func natsConfig(name, client, route, monitor, store string, routes []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# NATS node %s of a Whistle cluster on one machine, written by whistle cluster up.\n", name)
	fmt.Fprintf(&b, "server_name: %s\nlisten: %s\nhttp: %s\n", name, client, monitor)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", store)
	fmt.Fprintf(&b, "cluster {\n  name: whistle-local\n  listen: %s\n  routes: [\n", route)
	for _, r := range routes {
		fmt.Fprintf(&b, "    nats://%s\n", r)
	}
	b.WriteString("  ]\n}\n")
	// The users whistle up would write: each service publishes only the events it owns.
	fmt.Fprintf(&b, "include ../%s\n", system.UsersFile)
	return b.String()
}

// startNATS writes the NATS users and each node's configuration, starts the nodes, and waits
// until they have a JetStream meta leader.
func (s *State) startNATS(ctx context.Context, opts Options, p *ports) error {
	users, err := system.LoadNATSUsers(s.DataDir)
	if err != nil {
		return err
	}
	natsDir := filepath.Join(s.Dir, "nats")
	if err := os.MkdirAll(natsDir, 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	// The nodes include the users file from their own folder's parent.
	if err := natsx.WriteUsersConfig(filepath.Join(natsDir, system.UsersFile), users, "Whistle's NATS users, as in "+filepath.Join(s.DataDir, system.UsersFile)); err != nil {
		return err
	}
	clients, routes, monitors := make([]string, NATSNodes), make([]string, NATSNodes), make([]string, NATSNodes)
	for i := range NATSNodes {
		if clients[i], err = p.at(1 + i); err != nil {
			return err
		}
		if routes[i], err = p.at(11 + i); err != nil {
			return err
		}
		if monitors[i], err = p.at(21 + i); err != nil {
			return err
		}
	}
	var urls []string
	for i := range NATSNodes {
		name := "nats-" + strconv.Itoa(i+1)
		nodeDir := filepath.Join(natsDir, name)
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		conf := filepath.Join(nodeDir, "nats.conf")
		text := natsConfig(name, clients[i], routes[i], monitors[i], filepath.Join(nodeDir, "jetstream"), routes)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		proc, err := s.start(Proc{Role: "nats", Name: name, Addr: clients[i], Peer: routes[i], Monitor: monitors[i], Dir: nodeDir},
			opts.Binary, []string{"nats-node", "--config", conf}, nil)
		if err != nil {
			return err
		}
		opts.Logger.Info("NATS node started", "name", name, "pid", proc.PID, "client", clients[i], "route", routes[i])
		urls = append(urls, "nats://"+clients[i])
	}
	s.NATSURL = strings.Join(urls, ",")
	var tools natsx.User
	for _, u := range users {
		if u.Name == system.ToolsUser {
			tools = u
		}
	}
	return waitJetStream(ctx, s.NATSURL, tools, s.NATS)
}

// serviceEnv is the environment of one replica of a service.
func (s *State) serviceEnv(name string) ([]string, error) {
	users, err := natsx.ReadUsersConfig(filepath.Join(s.DataDir, system.UsersFile))
	if err != nil {
		return nil, err
	}
	password := ""
	for _, u := range users {
		if u.Username == name {
			password = u.Password
		}
	}
	return []string{
		"WHISTLE_NATS_URL=" + s.NATSURL,
		"WHISTLE_NATS_USER=" + name,
		"WHISTLE_NATS_PASSWORD=" + password,
		"WHISTLE_REDIS_URL=" + s.RedisURL(name),
	}, nil
}

// startServices starts the replicas of every service, a replica of each at a time, and waits
// until each is ready. The first replicas create their consumers; the later ones find them.
func (s *State) startServices(ctx context.Context, opts Options, p *ports) error {
	envs := map[string][]string{}
	for _, name := range system.Names {
		env, err := s.serviceEnv(name)
		if err != nil {
			return err
		}
		envs[name] = env
	}
	n := 0
	for r := range opts.Replicas {
		// A replica of each service at a time, started together and then awaited.
		spawns := map[string]func() (Proc, error){}
		var started []Proc
		for _, name := range system.Names {
			procName := name + "-" + strconv.Itoa(r+1)
			offset := n
			n++
			spawns[procName] = func() (Proc, error) {
				grpcAddr, httpAddr, err := p.pair(101+offset, 201+offset)
				if err != nil {
					return Proc{}, err
				}
				return s.start(Proc{Role: name, Name: procName, Addr: grpcAddr, Peer: httpAddr,
					Dir: filepath.Join(s.Dir, "services", procName)}, opts.Binary, serviceArgs(name, s.DataDir, grpcAddr, httpAddr, opts), envs[name])
			}
			proc, err := spawns[procName]()
			if err != nil {
				return err
			}
			started = append(started, proc)
		}
		for _, proc := range started {
			proc, err := listening(ctx, p, proc, spawns[proc.Name])
			if err != nil {
				return err
			}
			if err := WaitHealthy(ctx, proc); err != nil {
				return err
			}
			opts.Logger.Info("service replica started", "name", proc.Name, "pid", proc.PID, "grpc", proc.Addr, "http", proc.Peer)
		}
	}
	return nil
}

// startGateways starts opts.Replicas gateways (whistle serve gateway), each in front of every
// replica of every service, so that a gateway outlives the loss of a replica, and waits until each
// is ready.
func (s *State) startGateways(ctx context.Context, opts Options, p *ports) error {
	for r := range opts.Replicas {
		name := system.GatewayName + "-" + strconv.Itoa(r+1)
		spawn := func() (Proc, error) {
			httpAddr, err := p.at(301 + r)
			if err != nil {
				return Proc{}, err
			}
			args := []string{"serve", system.GatewayName, "--data", s.DataDir, "--http", httpAddr}
			for _, svc := range system.Names {
				args = append(args, "--"+svc+"-addr", strings.Join(s.ServiceAddrs(svc), ","))
			}
			if opts.CatalogPath != "" {
				args = append(args, "--catalog", opts.CatalogPath)
			}
			return s.start(Proc{Role: system.GatewayName, Name: name, Addr: httpAddr, Peer: httpAddr,
				Dir: filepath.Join(s.Dir, "services", name)}, opts.Binary, args, s.gatewayEnv())
		}
		proc, err := spawn()
		if err != nil {
			return err
		}
		if proc, err = listening(ctx, p, proc, spawn); err != nil {
			return err
		}
		if err := WaitHealthy(ctx, proc); err != nil {
			return err
		}
		opts.Logger.Info("gateway started", "name", proc.Name, "pid", proc.PID, "http", proc.Addr)
	}
	return nil
}

// gatewayEnv is the environment of a gateway: its Redis user, and no NATS.
func (s *State) gatewayEnv() []string {
	return []string{"WHISTLE_REDIS_URL=" + s.RedisURL(system.GatewayName)}
}

// serviceArgs are the arguments of whistle serve for a replica of the service name.
func serviceArgs(name, dataDir, grpcAddr, httpAddr string, opts Options) []string {
	args := []string{"serve", name, "--data", dataDir, "--grpc", grpcAddr, "--http", httpAddr, "--replicas", strconv.Itoa(NATSNodes)}
	if opts.CatalogPath != "" {
		args = append(args, "--catalog", opts.CatalogPath)
	}
	if opts.RulesPath != "" {
		args = append(args, "--rules", opts.RulesPath)
	}
	if opts.RosterPath != "" {
		args = append(args, "--roster", opts.RosterPath)
	}
	return args
}

// ServiceAddrs returns the gRPC addresses of a service's replicas, or the HTTP addresses of the
// gateways.
func (s *State) ServiceAddrs(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.Services {
		if p.Role == name {
			out = append(out, p.Addr)
		}
	}
	return out
}

// Proc returns the process named name.
func (s *State) Proc(name string) (Proc, bool) {
	for _, p := range s.All() {
		if p.Name == name {
			return p, true
		}
	}
	return Proc{}, false
}
