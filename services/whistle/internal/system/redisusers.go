package system

import (
	"maps"
	"slices"
	"strings"
)

// RedisKeys are the key patterns each service's (and the gateway's) Redis user may read and write. Every key a
// service writes begins with its name (see docs/architecture.md, Keys and Redis Cluster): its
// issue documents and sequences (pkg/eventlog/redisdoc), its indexes, its feeds and their :last
// (pkg/feed), its quarantined issues and its layout key. No service reads another's keys: they
// meet through the stream. A service that comes to need another key gets it here.
var RedisKeys = map[string][]string{
	"intake":     {"intake:*"},
	"routing":    {"routing:*"},
	"department": {"department:*", "department-notify:*"}, // and its notifier's outbox
	"escalation": {"escalation:*"},
	// The console's sessions and spent sign-in links, and Open311's rate limits, which redis_rate
	// keeps under a prefix of its own.
	GatewayName: {"gateway:*", "rate:gateway:*"},
}

// redisCommands are the commands every service's Redis user may run, as ACL rules applied in
// order: what reads and writes keys (SCAN among them, for a reset's and the layout check's walk
// over the service's own keys), scripts, transactions, the blocking XREAD of the feeds, what a
// client sends on connecting, and what a cluster client asks to learn the cluster's layout.
// Nothing that runs over every key (KEYS, FLUSHALL), configures or stops the server or reads
// other clients is allowed (-@dangerous), and no Pub/Sub channel (resetchannels).
var redisCommands = []string{
	"resetchannels", "-@all", "+@read", "+@write", "+@scripting", "+@transaction", "+@connection", "+@blocking",
	"-@dangerous", "+info", "+cluster|slots", "+cluster|shards", "+cluster|nodes", "+cluster|info", "+readonly", "+readwrite",
}

// RedisUserRules returns the ACL rules of a service's Redis user, without its password and
// without on/off: its key patterns, then the commands it may run. An operator's Redis gives them
// as ACL SETUSER <service> on ><password> <rules...>, or as redis-server's --user argument
// "<service> on ><password> <rules...>".
func RedisUserRules(service string) []string {
	var rules []string
	rules = append(rules, "resetkeys")
	for _, p := range RedisKeys[service] {
		rules = append(rules, "~"+p)
	}
	return append(rules, redisCommands...)
}

// RedisUserLine is one service's user as redis-server's user directive takes it (in a config
// file, an ACL file, or on the command line after --user): the name, on, the password and the
// rules.
func RedisUserLine(service, password string) string {
	return strings.Join(append([]string{service, "on", ">" + password}, RedisUserRules(service)...), " ")
}

// RedisUsers names the services that have a Redis user, in a fixed order.
func RedisUsers() []string { return slices.Sorted(maps.Keys(RedisKeys)) }
