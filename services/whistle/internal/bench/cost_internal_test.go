package bench

import (
	"strings"
	"testing"
	"time"
)

// A /metrics page as a Whistle process serves it, cut to the families the bench reads and one
// it does not.
const metricsPage = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
# HELP whistle_nats_server_messages_total Messages the embedded NATS server received and delivered.
# TYPE whistle_nats_server_messages_total counter
whistle_nats_server_messages_total{direction="in",otel_scope_name="github.com/whistle-dispatch/whistle/services/whistle/internal/system",otel_scope_schema_url="",otel_scope_version=""} 4000
whistle_nats_server_messages_total{direction="out",otel_scope_name="github.com/whistle-dispatch/whistle/services/whistle/internal/system",otel_scope_schema_url="",otel_scope_version=""} 9000
# HELP whistle_redis_round_trips_total Requests made of Redis.
# TYPE whistle_redis_round_trips_total counter
whistle_redis_round_trips_total{kind="command",otel_scope_name="github.com/whistle-dispatch/whistle/pkg/redisx",otel_scope_schema_url="",otel_scope_version=""} 700
whistle_redis_round_trips_total{kind="pipeline",otel_scope_name="github.com/whistle-dispatch/whistle/pkg/redisx",otel_scope_schema_url="",otel_scope_version=""} 300
# HELP whistle_consumer_lag Events in the stream that a service's consumer has not yet processed.
# TYPE whistle_consumer_lag gauge
whistle_consumer_lag{consumer="intake"} 3
`

func TestMetricsAreSummedOverEverySampleOfAFamilyThatMatches(t *testing.T) {
	fams, err := parseMetrics([]byte(metricsPage))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		match map[string]string
		want  float64
	}{
		{metricCPU, nil, 12.5},
		{metricRoundTrips, nil, 1000}, // commands and pipelines alike are round trips
		{metricNATS, map[string]string{"direction": "in"}, 4000},
		{metricNATS, map[string]string{"direction": "out"}, 9000},
	}
	for _, c := range cases {
		if got := sumFamily(fams, c.name, c.match); got.missing != "" || got.n != c.want {
			t.Errorf("%s %v = %v, want %g", c.name, c.match, got, c.want)
		}
	}
	if got := sumFamily(fams, "whistle_absent_total", nil); got.missing == "" {
		t.Errorf("a family the page lacks read as %g, want it missing", got.n)
	}
	if got := sumFamily(fams, metricNATS, map[string]string{"direction": "sideways"}); got.missing == "" {
		t.Errorf("a label value no sample has read as %g, want it missing", got.n)
	}
}

func TestRedisCPUAndCommandsAreReadFromINFOWithoutTheBenchsOwnINFOCalls(t *testing.T) {
	cpu := "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\nused_cpu_sys_children:0.125000\r\nused_cpu_user_children:0.125000\r\nused_cpu_sys_main_thread:1.0\r\nused_cpu_user_main_thread:2.0\r\n"
	if got, err := redisCPU(cpu); err != nil || got != 4 {
		t.Errorf("redisCPU = %g, %v; want 4 seconds: user and system, the children's included, the main thread's not again", got, err)
	}
	if _, err := redisCPU("# CPU\r\nused_cpu_sys:1.0\r\n"); err == nil {
		t.Error("an INFO cpu without used_cpu_user read without an error")
	}
	stats := "# Commandstats\r\n" +
		"cmdstat_get:calls=120,usec=300,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_exec:calls=30,usec=900,usec_per_call=30.00,rejected_calls=0,failed_calls=2\r\n" +
		"cmdstat_info:calls=7,usec=700,usec_per_call=100.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_client|setinfo:calls=2,usec=2,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n"
	if got, err := redisCommands(stats); err != nil || got != 152 {
		t.Errorf("redisCommands = %g, %v; want 152: every command's calls but INFO's", got, err)
	}
}

func TestACostIsTheGrowthOfEachCounterDividedByTheCompletedLifecycles(t *testing.T) {
	before := reading{
		cpu: 2 * time.Second, serverCPU: value{n: 10}, roundTrips: value{n: 1000},
		natsIn: value{n: 500}, natsOut: value{missing: "no varz"}, redisCPU: value{n: 1},
		redisCommands: value{n: 5000}, deliveries: value{n: 40}, events: value{n: 100},
	}
	after := reading{
		cpu: 7 * time.Second, serverCPU: value{n: 30}, roundTrips: value{n: 900}, // the server restarted
		natsIn: value{n: 2500}, natsOut: value{n: 9000}, redisCPU: value{n: 1.5},
		redisCommands: value{n: 45000}, deliveries: value{n: 240}, events: value{n: 700},
	}
	c := costOf(before, after, 100, false)
	per := map[string]struct {
		d    Delta
		want float64
	}{
		"this process's CPU seconds": {c.ProcessCPU, 0.05},
		"the server's CPU seconds":   {c.ServerCPU, 0.2},
		"NATS messages in":           {c.NATSIn, 20},
		"redis-server CPU seconds":   {c.RedisCPU, 0.005},
		"Redis commands":             {c.RedisCommands, 400},
		"watch deliveries":           {c.WatchDeliveries, 2},
		"events":                     {c.Events, 6},
	}
	for name, p := range per {
		if got, ok := c.Per(p.d); !ok || got != p.want {
			t.Errorf("%s per lifecycle = %g (measured: %v), want %g", name, got, ok, p.want)
		}
	}
	if _, ok := c.Per(c.NATSOut); ok || c.NATSOut.Missing != "no varz" {
		t.Errorf("NATS messages out unmeasured before the run read as measured (%+v); the reason must carry over", c.NATSOut)
	}
	if _, ok := c.Per(c.RedisRoundTrips); ok || !strings.Contains(c.RedisRoundTrips.Missing, "went down") {
		t.Errorf("a counter that went down read as measured (%+v)", c.RedisRoundTrips)
	}
	if local := costOf(before, after, 100, true); local.ServerCPU.Missing == "" {
		t.Error("in-process, the server's CPU was measured apart from this process's, which it is part of")
	}
	if _, ok := costOf(before, after, 0, false).Per(c.Events); ok {
		t.Error("a cost per lifecycle was given for a run that completed none")
	}
}

func TestARewriteIsChargedToTheBytesAppendedBetweenTwoRewrites(t *testing.T) {
	rw := AOFRewrite{CPU: 2 * time.Second, Base: 100 << 20, Percent: 100}
	// A rewrite comes every 100 MiB appended: 1 MiB owes a hundredth of it.
	if got := rw.Amortized(1 << 20); got != 20*time.Millisecond {
		t.Errorf("1 MiB appended owes %s of a 2s rewrite every 100 MiB; want 20ms", got)
	}
	rw.Percent = 200 // every 200 MiB
	if got := rw.Amortized(1 << 20); got != 10*time.Millisecond {
		t.Errorf("at 200%%, 1 MiB appended owes %s; want 10ms", got)
	}
	for _, off := range []AOFRewrite{{CPU: time.Second, Base: 1 << 20}, {CPU: time.Second, Base: 1 << 20, Percent: 100, Missing: "no INFO"}} {
		if got := off.Amortized(1 << 20); got != 0 {
			t.Errorf("%+v charges %s; with rewrites off or unmeasured it charges nothing", off, got)
		}
	}
}
