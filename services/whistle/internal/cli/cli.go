// Package cli is the whistle command-line client: every role's commands, each one a call to
// the public gRPC API of a running Whistle, printed as compact tables or, with --json, as the
// response messages themselves.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/grpcx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// DefaultServer is where a local `whistle up` serves gRPC.
const DefaultServer = "127.0.0.1:7070"

// TokenEnv is the environment variable the token is read from when --token is not given.
const TokenEnv = "WHISTLE_TOKEN"

// callTimeout bounds every unary call, so that a command against a stuck server ends.
const callTimeout = 30 * time.Second

// config is what every command needs to reach the server, from flags and the environment.
type config struct {
	server string
	token  string
	json   bool
}

// addFlags binds the connection flags to fs.
func (c *config) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.server, "server", DefaultServer, "gRPC address of the Whistle server")
	fs.StringVar(&c.token, "token", "", "bearer token (default $"+TokenEnv+")")
	fs.BoolVar(&c.json, "json", false, "print the response messages as protojson")
}

// tokenOrEnv is the token to send: --token, or else the environment. It is read here and
// nowhere else, when the command runs, so that help never prints a secret as a default.
func (c *config) tokenOrEnv() string {
	if c.token != "" {
		return c.token
	}
	return os.Getenv(TokenEnv)
}

// client is the connection a command runs with: one generated client per service, the
// output stream and the output mode.
type client struct {
	intake     whistlev1.IntakeServiceClient
	routing    whistlev1.RoutingServiceClient
	department whistlev1.DepartmentServiceClient
	escalation whistlev1.EscalationServiceClient
	out        io.Writer
	errOut     io.Writer // what is said about the command itself, so that --json output stays clean
	json       bool
}

// action is a command's body: it calls the server through c and prints to c.out.
type action func(ctx context.Context, c *client, args []string) error

// Commands returns every client command, to be added to the whistle root command.
func Commands() []*cobra.Command {
	cfg := &config{}
	cmds := []*cobra.Command{
		areasCommand(cfg), departmentsCommand(cfg), categoriesCommand(cfg), routeCommand(cfg), rulesCommand(cfg),
		raiseCommand(cfg), showCommand(cfg), listCommand(cfg), watchCommand(cfg),
		inboxCommand(cfg), ackCommand(cfg), resolveCommand(cfg), returnCommand(cfg), breachesCommand(cfg), deskCommand(cfg),
		quarantinedCommand(cfg), notificationsCommand(cfg), photoCommand(cfg), scorecardCommand(cfg),
	}
	cmds = append(cmds, officerCommands(cfg)...)
	cmds = append(cmds, supervisionCommands(cfg)...)
	for _, cmd := range cmds {
		cfg.addFlags(cmd.PersistentFlags())
	}
	// The calendar is read where the program runs: no server, so no connection flags.
	return append(cmds, calendarCommand())
}

// run turns an action into a cobra RunE: it dials and runs the action, and turns a failure
// into an error that reads "<code>: <message>", which the whistle program prints once as
// "whistle: <code>: <message>" before exiting non-zero. Usage is printed for mistakes cobra
// finds in the arguments, not for failures at run time.
func (cfg *config) run(fn action) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		err := checkUTF8(cmd, args)
		if err == nil {
			err = cfg.dial(cmd, fn, args)
		}
		stopped := errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled
		if err == nil || stopped && cmd.Context().Err() != nil {
			return nil // a watch ended by Ctrl-C is a clean stop
		}
		return cfg.failure(err)
	}
}

// checkUTF8 refuses flags and arguments that are not valid UTF-8 (text from a terminal or a
// file in another encoding) before anything is sent: protobuf cannot encode such a string, and
// the call would fail as an Internal error of the client naming no flag.
func checkUTF8(cmd *cobra.Command, args []string) error {
	var bad error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if bad == nil && !utf8.ValidString(f.Value.String()) {
			bad = invalid("--%s: must be valid UTF-8", f.Name)
		}
	})
	for i, a := range args {
		if bad == nil && !utf8.ValidString(a) {
			bad = invalid("argument %d: must be valid UTF-8", i+1)
		}
	}
	return bad
}

// dial connects to the server and runs fn; the connection is closed when fn returns.
func (cfg *config) dial(cmd *cobra.Command, fn action, args []string) error {
	conn, err := grpcx.Dial(cfg.server, cfg.tokenOrEnv())
	if err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	defer conn.Close()
	c := &client{
		intake:     whistlev1.NewIntakeServiceClient(conn),
		routing:    whistlev1.NewRoutingServiceClient(conn),
		department: whistlev1.NewDepartmentServiceClient(conn),
		escalation: whistlev1.NewEscalationServiceClient(conn),
		out:        cmd.OutOrStdout(),
		errOut:     cmd.ErrOrStderr(),
		json:       cfg.json,
	}
	return fn(cmd.Context(), c, args)
}

// failure is a command's error as people read it: the gRPC code and the server's message,
// with a hint when the server wanted a token and none was given. It keeps the status, so
// status.Code still reads the code from it.
type failure struct {
	st   *status.Status
	hint string
}

// Error is "<code>: <message>".
func (f *failure) Error() string { return fmt.Sprintf("%s: %s%s", f.st.Code(), f.st.Message(), f.hint) }

// GRPCStatus lets status.FromError and status.Code see the server's answer.
func (f *failure) GRPCStatus() *status.Status { return f.st }

// failure wraps err for printing.
func (cfg *config) failure(err error) error {
	f := &failure{st: status.Convert(err)}
	if f.st.Code() == codes.Unauthenticated && cfg.tokenOrEnv() == "" {
		f.hint = " (no token given: pass --token or set " + TokenEnv + ")"
	}
	return f
}

// invalid is a local InvalidArgument for a flag the command cannot run without or cannot read.
func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// required checks flags given as name, value pairs, in order, and names the first one that
// was left empty.
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return invalid("--%s is required", pairs[i])
		}
	}
	return nil
}

// maxPage is the largest page the servers serve; listing asks for full pages to make few calls.
const maxPage = 200

// allPages follows a paged list to its end, or until it has limit items when limit is above
// zero. list asks for one page of size items at token and returns them with the next page's
// token, empty on the last page; each call has its own callTimeout.
func allPages[T any](ctx context.Context, limit int, list func(ctx context.Context, size int32, token string) ([]T, string, error)) ([]T, error) {
	var all []T
	token := ""
	for {
		size := maxPage
		if limit > 0 {
			size = min(limit-len(all), maxPage)
		}
		pctx, cancel := unary(ctx)
		items, next, err := list(pctx, int32(size), token)
		cancel()
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if limit > 0 && len(all) >= limit {
			return all[:limit], nil
		}
		if next == "" {
			return all, nil
		}
		token = next
	}
}

// Waits between the attempts of a live watch to open its stream again after the server dropped
// it: from watchRetryFirst, doubling up to watchRetryMax, back to the first after a message.
const (
	watchRetryFirst = 250 * time.Millisecond
	watchRetryMax   = 8 * time.Second
)

// live is one live view the CLI follows: how to open its stream, which part of a message makes
// it news, and how a message reads as a line.
type live[M proto.Message] struct {
	what string                                               // what is watched, for the lines on stderr
	open func(ctx context.Context) (func() (M, error), error) // opens the stream; the func receives
	key  func(M) string                                       // equal keys: the same news, shown once
	line func(M) string                                       // the message as a line of the table
	head []string                                             // the table's column names, printed first
}

// follow prints each message of a live stream as it arrives, as one line of protojson with
// --json and as a line of the table otherwise, until the command ends. It says on stderr that it
// is watching, since a quiet view (no breach yet) is otherwise indistinguishable from a hung one.
// When the server drops the stream (a restart, a lost connection) it opens it again after a
// growing wait and carries on: a view that resumes from a position gets only what followed it,
// and one that begins again by sending the view as it stands has what was shown before the drop
// recognised by its key and not shown again. Only the first open fails the command, which then
// names a server that is not there.
func follow[M proto.Message](ctx context.Context, c *client, v live[M]) error {
	recv, err := v.open(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.errOut, "Watching %s; Ctrl-C to stop.\n", v.what)
	if !c.json && len(v.head) > 0 {
		if _, err := fmt.Fprintln(c.out, cellLine(v.head)); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	wait := watchRetryFirst
	for {
		m, err := recv()
		if err == nil {
			wait = watchRetryFirst
			if k := v.key(m); !seen[k] {
				seen[k] = true
				if err := printLine(c, m, v.line); err != nil {
					return err
				}
			}
			continue
		}
		if err = endOfStream(err); err != nil && status.Code(err) != codes.Unavailable || ctx.Err() != nil {
			return err
		}
		// The server ended the stream (it stops its watches when it shuts down) or could not be
		// reached: open it again until it can.
		for recv = nil; recv == nil; {
			fmt.Fprintf(c.errOut, "The stream of %s was dropped; reconnecting in %s.\n", v.what, span(wait))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			wait = min(2*wait, watchRetryMax)
			if recv, err = v.open(ctx); err != nil && status.Code(err) != codes.Unavailable {
				return err
			}
		}
		fmt.Fprintf(c.errOut, "Watching %s again.\n", v.what)
	}
}

// printLine writes one message of a stream: one line of protojson with --json, line(m) otherwise.
func printLine[M proto.Message](c *client, m M, line func(M) string) error {
	if c.json {
		return printJSONLine(c.out, m)
	}
	_, err := fmt.Fprintln(c.out, line(m))
	return err
}

// endOfStream is a stream's end as a command's result: the server closing it, or the person
// stopping the watch (Ctrl-C cancels the command's context), is no failure.
func endOfStream(err error) error {
	if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
		return nil
	}
	return err
}

// unary bounds one call with callTimeout.
func unary(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, callTimeout)
}
