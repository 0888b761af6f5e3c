package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/pkg/redisx"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// redisSlots is how many hash slots a Redis Cluster has.
const redisSlots = 16384

// AdminUser is the Redis user of the operator and of the cluster's own replication: Redis's
// default user, given a password. The services never use it.
const AdminUser = "default"

// startRedis starts RedisMasters masters and as many replicas, each with Whistle's users (one
// per service, limited to its keys, and the operator's), shares the slots among the masters,
// introduces the nodes, makes the replica i follow master i, and waits until the cluster serves
// every slot and every replica has caught up with its master.
func (s *State) startRedis(ctx context.Context, opts Options, p *ports) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return redisx.ErrRedisServerMissing
	}
	for _, name := range append([]string{AdminUser}, system.RedisUsers()...) {
		if s.RedisPasswords[name], err = natsx.NewPassword(); err != nil {
			return err
		}
	}
	if err := s.save(); err != nil {
		return err
	}
	const nodes = 2 * RedisMasters
	for i := range nodes {
		name := "redis-" + strconv.Itoa(i+1)
		dir := filepath.Join(s.Dir, "redis", name)
		proc, err := s.startListening(ctx, p, func() (Proc, error) {
			addr, bus, err := p.pair(31+i, 41+i)
			if err != nil {
				return Proc{}, err
			}
			return s.start(Proc{Role: "redis", Name: name, Addr: addr, Peer: bus, Dir: dir}, bin, redisArgs(addr, bus, dir, s.RedisPasswords), nil)
		})
		if err != nil {
			return err
		}
		opts.Logger.Info("redis-server started", "name", name, "pid", proc.PID, "addr", proc.Addr)
	}
	return s.formRedisCluster(ctx)
}

// redisArgs are the options of the cluster's Redis node on addr, with its cluster bus on bus and
// its files in dir, and Whistle's users with passwords.
func redisArgs(addr, bus, dir string, passwords map[string]string) []string {
	host, port, _ := net.SplitHostPort(addr)
	_, busPort, _ := net.SplitHostPort(bus)
	admin := passwords[AdminUser]
	args := []string{
		"--port", port, "--bind", host, "--dir", dir,
		"--appendonly", "yes", "--save", "", "--daemonize", "no", "--protected-mode", "no",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--cluster-port", busPort,
		// How long a master may be unreachable before its replica takes over.
		"--cluster-node-timeout", strconv.FormatInt(RedisNodeTimeout.Milliseconds(), 10),
		// A replica may take over however long it was cut off from its master: the
		// alternative is a cluster that stays down until an operator steps in.
		"--cluster-replica-validity-factor", "0",
		// A replica authenticates to its master as the operator.
		"--masteruser", AdminUser, "--masterauth", admin,
	}
	args = append(args, "--user", AdminUser, "on", ">"+admin, "~*", "&*", "+@all")
	for _, svc := range system.RedisUsers() {
		args = append(args, "--user", svc, "on", ">"+passwords[svc])
		args = append(args, system.RedisUserRules(svc)...)
	}
	return args
}

// AdminClient returns a client of one Redis node as the operator.
func (s *State) AdminClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Username: AdminUser, Password: s.RedisPasswords[AdminUser],
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRetries: -1})
}

// formRedisCluster joins the started nodes into one cluster (see startRedis).
func (s *State) formRedisCluster(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var admins []*redis.Client
	defer func() {
		for _, a := range admins {
			_ = a.Close()
		}
	}()
	for _, n := range s.Redis {
		admins = append(admins, s.AdminClient(n.Addr))
	}
	ids := make([]string, len(admins))
	for i, a := range admins {
		if err := until(ctx, func() error {
			var err error
			ids[i], err = a.ClusterMyID(ctx).Result()
			return err
		}); err != nil {
			return fmt.Errorf("cluster: %s: %w", s.Redis[i].Name, err)
		}
	}
	for i := range RedisMasters {
		first, last := i*redisSlots/RedisMasters, (i+1)*redisSlots/RedisMasters-1
		if err := admins[i].ClusterAddSlotsRange(ctx, first, last).Err(); err != nil {
			return fmt.Errorf("cluster: give slots %d-%d to %s: %w", first, last, s.Redis[i].Name, err)
		}
	}
	for _, n := range s.Redis[1:] {
		host, port, _ := net.SplitHostPort(n.Addr)
		_, bus, _ := net.SplitHostPort(n.Peer)
		if err := admins[0].Do(ctx, "CLUSTER", "MEET", host, port, bus).Err(); err != nil {
			return fmt.Errorf("cluster: introduce %s: %w", n.Name, err)
		}
	}
	for i := RedisMasters; i < len(admins); i++ {
		// A node can follow a master only once it knows it.
		if err := until(ctx, func() error { return admins[i].ClusterReplicate(ctx, ids[i-RedisMasters]).Err() }); err != nil {
			return fmt.Errorf("cluster: make %s a replica of %s: %w", s.Redis[i].Name, s.Redis[i-RedisMasters].Name, err)
		}
	}
	return until(ctx, func() error {
		for i, a := range admins {
			info, err := fields(a.ClusterInfo(ctx).Result())
			if err != nil {
				return err
			}
			if info["cluster_state"] != "ok" || info["cluster_known_nodes"] != strconv.Itoa(len(admins)) ||
				info["cluster_slots_ok"] != strconv.Itoa(redisSlots) {
				return fmt.Errorf("%s: cluster_state:%s, %s nodes known, %s slots ok", s.Redis[i].Name,
					info["cluster_state"], info["cluster_known_nodes"], info["cluster_slots_ok"])
			}
			if i >= RedisMasters {
				repl, err := fields(a.Info(ctx, "replication").Result())
				if err != nil {
					return err
				}
				if repl["master_link_status"] != "up" {
					return fmt.Errorf("%s has not caught up with its master", s.Redis[i].Name)
				}
			}
		}
		return nil
	})
}

// fields reads the "key:value" lines of an INFO or CLUSTER INFO answer.
func fields(text string, err error) (map[string]string, error) {
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for line := range strings.Lines(text) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

// RedisURL names the Redis Cluster as a service's user reaches it: every node as a place to
// start from, so that a client started while a master is down still finds the cluster.
func (s *State) RedisURL(service string) string {
	return s.redisURL(service, s.RedisPasswords[service])
}

// AdminRedisURL names the Redis Cluster as the operator reaches it.
func (s *State) AdminRedisURL() string { return s.redisURL(AdminUser, s.RedisPasswords[AdminUser]) }

func (s *State) redisURL(user, password string) string {
	u := &url.URL{Scheme: "redis", User: url.UserPassword(user, password), Host: s.Redis[0].Addr}
	q := url.Values{}
	for _, n := range s.Redis[1:] {
		q.Add("addr", n.Addr)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// waitJetStream waits until the NATS nodes have a JetStream meta leader (the account's
// JetStream answers), and makes the streams and the photo bucket.
func waitJetStream(ctx context.Context, urls string, tools natsx.User, nodes []Proc) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var nc *nats.Conn
	if err := until(ctx, func() error {
		for _, n := range nodes {
			if !alive(n) {
				return fmt.Errorf("%s (see %s): %w", n.Name, n.Log(), errStopped)
			}
		}
		var err error
		nc, err = nats.Connect(urls, nats.UserInfo(tools.Name, tools.Password), nats.Timeout(time.Second))
		return err
	}); err != nil {
		return fmt.Errorf("cluster: connect to NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// The streams and the photo bucket are made here, at three replicas, rather than raced for
	// by every replica of every service as it starts: on a busy machine the first replicas of
	// intake and the department, making the photo bucket at once, each ran out of JetStream's
	// five seconds and ended.
	if err := until(ctx, func() error {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := js.AccountInfo(c); err != nil {
			return err
		}
		if _, err := eventlog.Open(c, nc, eventlog.Config{Replicas: NATSNodes}); err != nil {
			return err
		}
		_, err := evidence.Open(c, nc, evidence.Config{Replicas: NATSNodes})
		return err
	}); err != nil {
		return fmt.Errorf("cluster: NATS JetStream: %w", err)
	}
	return nil
}

// WaitHealthy waits until a service replica's /healthz answers ok.
func WaitHealthy(ctx context.Context, p Proc) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	err := until(ctx, func() error {
		if !alive(p) {
			return errStopped
		}
		return Healthy(ctx, p)
	})
	if err != nil {
		return fmt.Errorf("cluster: %s is not ready (see %s): %w\n%s", p.Name, p.Log(), err, logTail(p))
	}
	return nil
}

// logTail is the end of a process's output, where it says why it stopped.
func logTail(p Proc) string {
	b, err := os.ReadFile(p.Log())
	if err != nil {
		return ""
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}

// errStopped is a process that ended while it was waited for.
var errStopped = errors.New("the process ended")

// Healthy asks a service replica's /healthz once.
func Healthy(ctx context.Context, p Proc) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Peer+"/healthz", nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz answers %s", res.Status)
	}
	return nil
}

// until calls fn every 50 ms until it succeeds, returns errStopped, or ctx ends; it returns
// the last error then.
func until(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil || errors.Is(err, errStopped) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
