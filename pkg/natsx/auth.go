package natsx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// User is a NATS user and the subjects it may publish and subscribe to. The one value
// becomes both the embedded server's configuration (ServerUser) and the lines of a NATS
// server config file (WriteUsersConfig), so that an external NATS given that file enforces
// exactly what the embedded one does.
type User struct {
	Name, Password string
	// Publish and Subscribe are the subjects allowed; PublishDeny are carved out of Publish.
	// An empty Publish or Subscribe allows nothing.
	Publish, PublishDeny, Subscribe []string
}

// ServerUser returns u as nats-server's own configuration of a user.
func (u User) ServerUser() *server.User {
	return &server.User{
		Username: u.Name,
		Password: u.Password,
		Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: slices.Clone(u.Publish), Deny: slices.Clone(u.PublishDeny)},
			Subscribe: &server.SubjectPermission{Allow: slices.Clone(u.Subscribe)},
		},
	}
}

// passwordBytes is the randomness of a generated password: 192 bits, hex-encoded.
const passwordBytes = 24

// NewPassword returns a random password for a user.
func NewPassword() (string, error) {
	b := make([]byte, passwordBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("natsx: generate a password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// WriteUsersConfig writes users to path in NATS server config syntax, as an `authorization`
// block an operator can include in an external server's config, with mode 0600 because it
// holds the passwords. It replaces the file whole (write, then rename), so a reader never
// sees half of it.
func WriteUsersConfig(path string, users []User, header string) error {
	var b strings.Builder
	for line := range strings.Lines(header) {
		b.WriteString("# " + line)
	}
	if header != "" && !strings.HasSuffix(header, "\n") {
		b.WriteString("\n")
	}
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		fmt.Fprintf(&b, "    {\n      user: %s\n      password: %s\n      permissions: {\n", strconv.Quote(u.Name), strconv.Quote(u.Password))
		fmt.Fprintf(&b, "        publish: { allow: %s", subjectList(u.Publish))
		if len(u.PublishDeny) > 0 {
			fmt.Fprintf(&b, ", deny: %s", subjectList(u.PublishDeny))
		}
		fmt.Fprintf(&b, " }\n        subscribe: { allow: %s }\n      }\n    }\n", subjectList(u.Subscribe))
	}
	b.WriteString("  ]\n}\n")

	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("natsx: write %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // WriteFile keeps the mode of a file left behind
		return fmt.Errorf("natsx: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("natsx: write %s: %w", path, err)
	}
	return nil
}

// subjectList writes subjects as a NATS config list of quoted strings.
func subjectList(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// ReadUsersConfig reads the users of a NATS config file with nats-server's own parser, so
// that what WriteUsersConfig wrote is read as a server reads it. A missing file returns no
// users and no error.
func ReadUsersConfig(path string) ([]*server.User, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("natsx: read %s: %w", path, err)
	}
	return opts.Users, nil
}
