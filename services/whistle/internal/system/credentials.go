package system

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"github.com/whistle-dispatch/whistle/pkg/eventlog"
	"github.com/whistle-dispatch/whistle/pkg/natsx"
	"github.com/whistle-dispatch/whistle/services/internal/evidence"
)

// EventKinds are the kinds of event each service owns: the only events its NATS user may
// publish. A service that comes to publish a new kind gets it here, in this one line.
var EventKinds = map[string][]string{
	"intake":     {"raised", "verified", "rated", "closed"},
	"routing":    {"routed", "needs-dispatch", "linked", "joined", "unlinked", "left", "recategorised"},
	"department": {"acknowledged", "resolved", "returned", "pushed", "handed-over", "noted", "extension-requested"},
	"escalation": {"breached", "reminded", "escalated", "urged", "extension-decided"},
}

// ToolsUser is the NATS user of what reads the stream without writing events: the process's
// own connection (health, the replay's resets), `whistle replay`, `whistle bench` and tests.
const ToolsUser = "tools"

// UsersFile is the data folder's file of NATS users, in NATS server config syntax; it holds
// the passwords, so it is written with mode 0600.
const UsersFile = "nats-users.conf"

// usersHeader opens UsersFile, for the operator who finds it.
const usersHeader = `Whistle's NATS users, one per service and one for tools, written by whistle up.
Each service may publish only the events it owns, its dead letters and the JetStream API it
needs; tools may read but publish no events. To run the services against an external NATS,
include this file in its config (include ./nats-users.conf) and give each whistle serve its
user's credentials (WHISTLE_NATS_USER, WHISTLE_NATS_PASSWORD).
`

// Subjects every user needs: the JetStream API, acknowledgements, and replies to its requests.
var (
	jsAPI   = "$JS.API.>"
	jsAck   = "$JS.ACK.>"
	inboxes = "_INBOX.>"
	// members is where each replica of a service says it is alive, to spread the partitions.
	members = "$KV." + eventlog.MembersBucket + ".>"
	// serviceDenied is the JetStream API a service never needs, and which would let one
	// service destroy or rewrite the record: streams are only ever created by a service,
	// never updated, purged or deleted, and no event is deleted.
	serviceDenied = []string{"$JS.API.STREAM.UPDATE.>", "$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>"}
	// photos is the evidence bucket's object store: intake stores, claims and removes photos,
	// the department claims those a resolve names.
	photos       = "$O." + evidence.Bucket + ".>"
	photoWriters = []string{"intake", "department"}
	// photoRemover is the service whose photo sweep removes photos, which purges their chunks
	// from the bucket's stream. A deny wins over any allow in NATS, so its user cannot be denied
	// every purge and allowed that one: it is denied the purge of each stream of the record by
	// name instead, and may purge no other stream's messages one by one either.
	photoRemover  = "intake"
	removerDenied = []string{"$JS.API.STREAM.UPDATE.>", "$JS.API.STREAM.DELETE.>",
		"$JS.API.STREAM.PURGE." + eventlog.StreamName, "$JS.API.STREAM.PURGE." + eventlog.DeadLetterStream,
		"$JS.API.STREAM.PURGE.KV_" + eventlog.MembersBucket, "$JS.API.STREAM.MSG.DELETE.>"}
	// benchSubjects are the streams of whistle bench's baselines and floor, which measure raw
	// publishes and the events' JetStream cost apart from the system's stream.
	benchSubjects = "bench.>"
)

// natsUsers returns the users of the embedded NATS: one per service of EventKinds and
// ToolsUser, in a fixed order, with the passwords given (by user name).
func natsUsers(passwords map[string]string) []natsx.User {
	users := []natsx.User{{
		Name:      ToolsUser,
		Password:  passwords[ToolsUser],
		Publish:   []string{jsAPI, jsAck, inboxes, benchSubjects},
		Subscribe: []string{inboxes},
	}}
	for _, name := range slices.Sorted(maps.Keys(EventKinds)) {
		pub := []string{}
		for _, kind := range EventKinds[name] {
			pub = append(pub, eventlog.KindSubjects(kind))
		}
		pub = append(pub, eventlog.DeadLetterRoot+".>", members)
		if slices.Contains(photoWriters, name) {
			pub = append(pub, photos)
		}
		pub = append(pub, jsAPI, jsAck, inboxes)
		deny := serviceDenied
		if name == photoRemover {
			deny = removerDenied
		}
		users = append(users, natsx.User{
			Name:        name,
			Password:    passwords[name],
			Publish:     pub,
			PublishDeny: slices.Clone(deny),
			Subscribe:   []string{inboxes},
		})
	}
	return users
}

// loadUsers returns the embedded NATS's users with the passwords kept in dataDir/UsersFile,
// making a password for a user that has none yet, and writes the file back, so that it
// always states the permissions this build enforces.
func loadUsers(dataDir string) ([]natsx.User, error) {
	path := filepath.Join(dataDir, UsersFile)
	kept, err := natsx.ReadUsersConfig(path)
	if err != nil {
		return nil, fmt.Errorf("system: NATS users: %w", err)
	}
	passwords := map[string]string{}
	for _, u := range kept {
		passwords[u.Username] = u.Password
	}
	users := natsUsers(passwords)
	for i := range users {
		if users[i].Password == "" {
			if users[i].Password, err = natsx.NewPassword(); err != nil {
				return nil, err
			}
		}
	}
	if err := natsx.WriteUsersConfig(path, users, usersHeader); err != nil {
		return nil, fmt.Errorf("system: NATS users: %w", err)
	}
	return users, nil
}

// LoadNATSUsers returns the NATS users of dataDir/UsersFile, one per service and ToolsUser, making
// a password for each user that has none, and writes the file back, as whistle up does for its
// embedded NATS. `whistle cluster up` writes it for its NATS nodes, which include it.
func LoadNATSUsers(dataDir string) ([]natsx.User, error) { return loadUsers(dataDir) }
