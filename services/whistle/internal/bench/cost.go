package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
)

// The metric families the bench reads off a Whistle process's /metrics.
const (
	// metricCPU is the Prometheus process collector's user and system CPU seconds.
	metricCPU = "process_cpu_seconds_total"
	// metricRoundTrips is pkg/redisx's whistle.redis.round_trips.
	metricRoundTrips = "whistle_redis_round_trips_total"
	// metricConflicts is pkg/eventlog's whistle.decide.conflicts, absent until a first conflict.
	metricConflicts = "whistle_decide_conflicts_total"
	// metricNATS is the system's whistle.nats.server.messages, there only when NATS is embedded.
	metricNATS = "whistle_nats_server_messages_total"
)

// Delta is how much a counter grew over a run. Missing, when set, says why it was not measured,
// and N is then meaningless.
type Delta struct {
	N       float64
	Missing string
}

// Cost is what a run spent, each figure a counter read before and after the run; Per divides by
// the lifecycles the run completed.
type Cost struct {
	// Lifecycles is how many lifecycles the run completed: what the figures are divided by.
	Lifecycles int
	// ProcessCPU is this process's user and system CPU seconds: with a system started in this
	// process, the system and the simulated callers; with --server, the callers alone.
	ProcessCPU Delta
	// ServerCPU is the CPU seconds of the processes behind --metrics (process_cpu_seconds_total),
	// with --server only; in-process it would be ProcessCPU again.
	ServerCPU Delta
	// RedisCPU is redis-server's CPU seconds (INFO cpu: user and system, its children included).
	RedisCPU Delta
	// RedisCommands is the commands redis-server ran (INFO commandstats, the calls of every
	// command but INFO, which is the bench reading these counters).
	RedisCommands Delta
	// RedisRoundTrips is the requests the system's Redis clients made (whistle.redis.round_trips).
	RedisRoundTrips Delta
	// Conflicts is the appends the services decided on a stale state and decided again
	// (whistle.decide.conflicts).
	Conflicts Delta
	// NATSIn and NATSOut are the messages the NATS server received and delivered (its varz
	// in_msgs and out_msgs), from whistle.nats.server.messages or --nats-varz.
	NATSIn, NATSOut Delta
	// WatchDeliveries is the messages the bench's own WatchInbox streams received.
	WatchDeliveries Delta
	// Events is how many events the stream gained.
	Events Delta
}

// Per is d per completed lifecycle, and false when it cannot be told (not measured, or no
// lifecycle completed).
func (c Cost) Per(d Delta) (float64, bool) {
	if d.Missing != "" || c.Lifecycles == 0 {
		return 0, false
	}
	return d.N / float64(c.Lifecycles), true
}

// value is one reading of a counter; missing, when set, says why there is none.
type value struct {
	n       float64
	missing string
}

// reading is every counter a run's cost is worked out from, read at one moment.
type reading struct {
	cpu                     time.Duration // this process
	serverCPU, roundTrips   value
	conflicts               value
	natsIn, natsOut         value
	redisCPU, redisCommands value
	deliveries, events      value
}

// probe reads the counters of the system under measurement.
type probe struct {
	// local says the system runs in this process, so that its CPU is this process's.
	local bool
	// metrics are the /metrics URLs of the processes of the system; none leaves the CPU of the
	// server, its Redis round trips and (without varz) its NATS messages unmeasured.
	metrics []string
	// varz is a NATS server's monitoring /varz URL, read for the messages instead of /metrics.
	varz string
	// redis reads INFO; nil leaves Redis's CPU and commands unmeasured, for the reason in noRedis.
	redis   *redis.Client
	noRedis string
	// js reads the length of stream (the system's when empty); nil leaves the events unmeasured.
	js     jetstream.JetStream
	stream string
	// deliveries counts the messages the bench's WatchInbox streams received.
	deliveries func() int64
	http       *http.Client
}

// read takes a reading. The stream's length is read first when opening a run and last when
// closing one, so that the JetStream request it makes falls outside the run's NATS messages.
func (p *probe) read(ctx context.Context, closing bool) reading {
	var r reading
	if !closing {
		r.events = p.streamEvents(ctx)
	}
	p.readMetrics(ctx, &r)
	if p.varz != "" {
		r.natsIn, r.natsOut = p.readVarz(ctx)
	}
	r.redisCPU, r.redisCommands = p.readRedis(ctx)
	r.deliveries = value{n: float64(p.deliveries())}
	r.cpu = processCPU()
	if closing {
		r.events = p.streamEvents(ctx)
	}
	return r
}

// streamEvents is the last sequence of the probe's stream.
func (p *probe) streamEvents(ctx context.Context) value {
	if p.js == nil {
		return value{missing: "no NATS to read the stream from"}
	}
	name := cmp.Or(p.stream, eventlog.StreamName)
	s, err := p.js.Stream(ctx, name)
	if err != nil {
		return value{missing: "stream " + name + ": " + err.Error()}
	}
	info, err := s.Info(ctx)
	if err != nil {
		return value{missing: "stream " + name + ": " + err.Error()}
	}
	return value{n: float64(info.State.LastSeq)}
}

// readMetrics reads the server's CPU, its Redis round trips and its NATS messages off every
// /metrics URL, summed over them.
func (p *probe) readMetrics(ctx context.Context, r *reading) {
	if len(p.metrics) == 0 {
		why := "no --metrics URL of the server was given"
		r.serverCPU, r.roundTrips, r.conflicts = value{missing: why}, value{missing: why}, value{missing: why}
		r.natsIn, r.natsOut = value{missing: why + " (nor --nats-varz)"}, value{missing: why + " (nor --nats-varz)"}
		return
	}
	var cpu, trips, conflicts, in, out value
	for _, url := range p.metrics {
		fams, err := p.scrape(ctx, url)
		if err != nil {
			why := err.Error()
			r.serverCPU, r.roundTrips, r.conflicts, r.natsIn, r.natsOut = value{missing: why}, value{missing: why}, value{missing: why}, value{missing: why}, value{missing: why}
			return
		}
		cpu = addValue(cpu, sumFamily(fams, metricCPU, nil), url)
		trips = addValue(trips, sumFamily(fams, metricRoundTrips, nil), url)
		lost := sumFamily(fams, metricConflicts, nil)
		if _, ok := fams[metricConflicts]; !ok {
			lost = value{} // a counter is exported from its first addition on
		}
		conflicts = addValue(conflicts, lost, url)
		in = addValue(in, sumFamily(fams, metricNATS, map[string]string{"direction": "in"}), url)
		out = addValue(out, sumFamily(fams, metricNATS, map[string]string{"direction": "out"}), url)
	}
	r.serverCPU, r.roundTrips, r.conflicts, r.natsIn, r.natsOut = cpu, trips, conflicts, in, out
	if in.missing != "" {
		r.natsIn.missing += " (its NATS is not embedded; give --nats-varz)"
		r.natsOut.missing += " (its NATS is not embedded; give --nats-varz)"
	}
}

// addValue adds one process's v to the sum so far; a process without the counter makes the sum
// missing, naming the process.
func addValue(sum, v value, url string) value {
	switch {
	case sum.missing != "":
		return sum
	case v.missing != "":
		return value{missing: url + " " + v.missing}
	}
	return value{n: sum.n + v.n}
}

// scrape fetches and parses a /metrics page.
func (p *probe) scrape(ctx context.Context, url string) (map[string][]sample, error) {
	body, err := p.get(ctx, url)
	if err != nil {
		return nil, err
	}
	return parseMetrics(body)
}

// get fetches url and returns its body, or an error naming the url.
func (p *probe) get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	// The classic text format: what expfmt's text parser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	res, err := p.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return body, nil
}

// sample is one line of a metric family: its labels and value.
type sample struct {
	labels map[string]string
	value  float64
}

// parseMetrics parses the Prometheus text format into each family's samples.
func parseMetrics(body []byte) (map[string][]sample, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	out := map[string][]sample{}
	for name, f := range fams {
		var vs []sample
		for _, m := range f.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.value = m.GetGauge().GetValue()
			case m.Untyped != nil:
				s.value = m.GetUntyped().GetValue()
			default:
				continue
			}
			vs = append(vs, s)
		}
		out[name] = vs
	}
	return out, nil
}

// sumFamily is the sum of a family's samples whose labels include match.
func sumFamily(fams map[string][]sample, name string, match map[string]string) value {
	f, ok := fams[name]
	if !ok {
		return value{missing: "has no " + name}
	}
	var sum float64
	found := false
	for _, s := range f {
		ok := true
		for k, v := range match {
			ok = ok && s.labels[k] == v
		}
		if ok {
			sum += s.value
			found = true
		}
	}
	if !found {
		return value{missing: fmt.Sprintf("has no %s with %v", name, match)}
	}
	return value{n: sum}
}

// readVarz reads a NATS server's message counters off its monitoring endpoint.
func (p *probe) readVarz(ctx context.Context) (in, out value) {
	body, err := p.get(ctx, p.varz)
	if err != nil {
		return value{missing: err.Error()}, value{missing: err.Error()}
	}
	var v struct {
		InMsgs  *float64 `json:"in_msgs"`
		OutMsgs *float64 `json:"out_msgs"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.InMsgs == nil || v.OutMsgs == nil {
		why := fmt.Sprintf("%s has no in_msgs and out_msgs (%v)", p.varz, err)
		return value{missing: why}, value{missing: why}
	}
	return value{n: *v.InMsgs}, value{n: *v.OutMsgs}
}

// readRedis reads redis-server's CPU seconds and command count.
func (p *probe) readRedis(ctx context.Context) (cpu, commands value) {
	if p.redis == nil {
		return value{missing: p.noRedis}, value{missing: p.noRedis}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Two INFO calls, each of one section: a Redis older than 7 takes one section at a time.
	cpuInfo, err := p.redis.Info(ctx, "cpu").Result()
	if err != nil {
		return value{missing: "INFO cpu: " + err.Error()}, value{missing: "INFO cpu: " + err.Error()}
	}
	stats, err := p.redis.Info(ctx, "commandstats").Result()
	if err != nil {
		return value{missing: "INFO commandstats: " + err.Error()}, value{missing: "INFO commandstats: " + err.Error()}
	}
	c, err := redisCPU(cpuInfo)
	if err != nil {
		cpu = value{missing: err.Error()}
	} else {
		cpu = value{n: c}
	}
	n, err := redisCommands(stats)
	if err != nil {
		commands = value{missing: err.Error()}
	} else {
		commands = value{n: n}
	}
	return cpu, commands
}

// redisCPU is the CPU seconds in an INFO cpu reply: the server's user and system time and its
// children's (the forks that rewrite the append-only file).
func redisCPU(info string) (float64, error) {
	fields := infoFields(info)
	var sum float64
	for _, k := range []string{"used_cpu_user", "used_cpu_sys", "used_cpu_user_children", "used_cpu_sys_children"} {
		v, ok := fields[k]
		if !ok {
			return 0, fmt.Errorf("INFO cpu has no %s", k)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu: %s: %w", k, err)
		}
		sum += f
	}
	return sum, nil
}

// redisCommands is the calls of every command in an INFO commandstats reply but INFO, which
// the bench itself sends to read the counters.
func redisCommands(info string) (float64, error) {
	var sum float64
	for k, v := range infoFields(info) {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok || name == "info" {
			continue
		}
		// calls=12,usec=34,usec_per_call=2.83,rejected_calls=0,failed_calls=0
		calls := ""
		for part := range strings.SplitSeq(v, ",") {
			if c, ok := strings.CutPrefix(part, "calls="); ok {
				calls = c
			}
		}
		n, err := strconv.ParseFloat(calls, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO commandstats: %s: no calls in %q", k, v)
		}
		sum += n
	}
	return sum, nil
}

// infoFields are the key:value lines of an INFO reply.
func infoFields(info string) map[string]string {
	fields := map[string]string{}
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = v
		}
	}
	return fields
}

// costOf is what a run cost, from the readings before and after it; local says the system runs
// in this process, whose CPU is then the system's.
func costOf(before, after reading, lifecycles int, local bool) Cost {
	c := Cost{
		Lifecycles:      lifecycles,
		ProcessCPU:      Delta{N: (after.cpu - before.cpu).Seconds()},
		RedisCPU:        delta(before.redisCPU, after.redisCPU),
		RedisCommands:   delta(before.redisCommands, after.redisCommands),
		RedisRoundTrips: delta(before.roundTrips, after.roundTrips),
		Conflicts:       delta(before.conflicts, after.conflicts),
		NATSIn:          delta(before.natsIn, after.natsIn),
		NATSOut:         delta(before.natsOut, after.natsOut),
		WatchDeliveries: delta(before.deliveries, after.deliveries),
		Events:          delta(before.events, after.events),
	}
	if after.cpu == 0 {
		c.ProcessCPU = Delta{Missing: "this platform does not tell a process's CPU time"}
	}
	if local {
		c.ServerCPU = Delta{Missing: "the system runs in this process: its CPU is this process's"}
	} else {
		c.ServerCPU = delta(before.serverCPU, after.serverCPU)
	}
	return c
}

// errCounterWentBack is why a counter that shrank between two readings has no delta.
var errCounterWentBack = errors.New("the counter went down between the readings (did the server restart?)")

// delta is after − before, or missing with the reason either reading gave.
func delta(before, after value) Delta {
	switch {
	case before.missing != "":
		return Delta{Missing: before.missing}
	case after.missing != "":
		return Delta{Missing: after.missing}
	case after.n < before.n:
		return Delta{Missing: errCounterWentBack.Error()}
	}
	return Delta{N: after.n - before.n}
}

// settleTimeout bounds how long the bench waits for the services to catch up with the stream.
const settleTimeout = 30 * time.Second

// settle waits until every durable consumer of the event stream (each service's) has processed
// every event, so that a run's costs include the work its lifecycles left behind and the next
// run does not pay for it. The watches' consumers are ephemeral and are not waited for. It polls
// every 100 ms, each poll a few JetStream API requests.
func settle(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	stream, err := js.Stream(ctx, eventlog.StreamName)
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var busy []string
	for {
		now, err := busyConsumers(ctx, stream)
		switch {
		case err != nil && ctx.Err() != nil && busy != nil:
			return fmt.Errorf("settle: consumers still behind after %s: %s", settleTimeout, strings.Join(busy, ", "))
		case err != nil:
			return fmt.Errorf("settle: %w", err)
		case len(now) == 0:
			return nil
		}
		busy = now
		select {
		case <-ctx.Done():
			return fmt.Errorf("settle: consumers still behind after %s: %s", settleTimeout, strings.Join(busy, ", "))
		case <-tick.C:
		}
	}
}

// busyConsumers names the stream's durable consumers that have events still to process.
func busyConsumers(ctx context.Context, stream jetstream.Stream) ([]string, error) {
	var busy []string
	list := stream.ListConsumers(ctx)
	for info := range list.Info() {
		if info.Config.Durable == "" {
			continue
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			busy = append(busy, fmt.Sprintf("%s (%d pending, %d unacknowledged)", info.Config.Durable, info.NumPending, info.NumAckPending))
		}
	}
	if err := list.Err(); err != nil {
		return nil, err
	}
	return busy, nil
}
