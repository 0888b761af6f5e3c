// Package eventlog is Whistle's system of record: the JetStream stream of whistle events.
//
// Every event belongs to one issue and travels on the subject whistle.<partition>.<issue>.<kind>,
// where the partition is a function of the issue alone (Partition), so that each partition of each
// service can have one consumer that owns its issues. Appends are
// conditional on the issue's last sequence (optimistic concurrency over all of the issue's subjects)
// and carry a deterministic message id, so that a retried append is dropped as a duplicate and two
// concurrent writers to one issue cannot both win. Services derive their Redis state from the log
// through a Projection, applied one issue at a time in stream order.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/whistle-dispatch/whistle/pkg/otelx"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

// Stream and subject names.
const (
	StreamName       = "WHISTLE"
	SubjectRoot      = "whistle"
	DeadLetterStream = "WHISTLE_DEAD"
	DeadLetterRoot   = "whistle-dead"
)

// HeaderCorrelationID rides on every event besides the trace context.
const HeaderCorrelationID = "Whistle-Correlation-Id"

// LayoutKey names, in the stream's metadata, the subject layout its events were written with, and
// Layout is the one this package writes: subjects whistle.<partition>.<issue>.<kind> over
// Partitions partitions.
const LayoutKey = "whistle.subjects"

var Layout = "partitioned/" + strconv.Itoa(Partitions)

// DefaultDuplicateWindow is how long JetStream remembers message ids for deduplication. Conditional
// appends make retries safe beyond it; the window makes a retry that lost its PubAck cheap.
const DefaultDuplicateWindow = 2 * time.Minute

var tracer = otel.Tracer("github.com/whistle-dispatch/whistle/pkg/eventlog")

// ErrConflict means the issue gained events since the writer read it.
var ErrConflict = errors.New("the issue changed since it was read")

// ConflictError is the ErrConflict of one append, with the issue's actual last sequence.
type ConflictError struct{ Expected, Actual uint64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the issue changed since it was read: expected last sequence %d, stream has %d", e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Config shapes the streams when Open has to create them; it never changes a stream that exists.
type Config struct {
	// Replicas is the replication factor of a stream Open creates: 1 for an embedded server, 3
	// for a three-node cluster. A stream that exists keeps its own.
	Replicas int
	// DuplicateWindow is the deduplication window of a stream Open creates; zero means
	// DefaultDuplicateWindow.
	DuplicateWindow time.Duration
	// Logger is told whether each stream was found or created; nil logs nothing.
	Logger *slog.Logger
}

// Log is the stream of whistle events. It is safe for concurrent use.
type Log struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	dead   jetstream.Stream
	// readOnly refuses every append: a rebuild reads the stream and must never write to it.
	readOnly bool
	// own is what this process knows of the partitions it owns, shared by the log's copies.
	own *owners
	// commands serialises the commands of this log on each issue, shared by the log's copies.
	commands *issueLocks
}

// ErrReadOnly is what an append on a read-only log returns.
var ErrReadOnly = errors.New("eventlog: the log is open read-only")

// ReadOnly returns the same log, refusing every append, for a rebuild that must only read.
func (l *Log) ReadOnly() *Log {
	ro := *l
	ro.readOnly = true
	return &ro
}

// Open returns the log on the event and dead-letter streams, creating each one that is missing.
// A stream that exists is used as it is: its configuration belongs to whoever runs NATS (an
// operator may have raised it to three replicas, or changed its limits), so a service starting
// must never update it, and least of all reduce a clustered stream to one replica.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Log, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("eventlog: jetstream: %w", err)
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.DuplicateWindow <= 0 {
		cfg.DuplicateWindow = DefaultDuplicateWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	stream, err := openStream(ctx, js, cfg.Logger, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Whistle events: the system of record",
		Subjects:    []string{SubjectRoot + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		AllowDirect: true,
		Metadata:    map[string]string{LayoutKey: Layout},
	})
	if err != nil {
		return nil, err
	}
	if got := stream.CachedInfo().Config.Metadata[LayoutKey]; got != Layout {
		return nil, fmt.Errorf("eventlog: stream %s has the subject layout %q, and this Whistle reads %q: "+
			"its events were written by an earlier Whistle; start on a new data folder (or NATS server)", StreamName, got, Layout)
	}
	dead, err := openStream(ctx, js, cfg.Logger, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "Whistle events a consumer could never process, with the reason",
		Subjects:    []string{DeadLetterRoot + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, err
	}
	return &Log{js: js, stream: stream, dead: dead, own: newOwners(), commands: &issueLocks{}}, nil
}

// openStream returns the stream named in want as it exists, or creates it with want when it
// is missing. Two processes may start at once: the one whose create loses finds the other's.
func openStream(ctx context.Context, js jetstream.JetStream, logger *slog.Logger, want jetstream.StreamConfig) (jetstream.Stream, error) {
	for range 2 {
		s, err := js.Stream(ctx, want.Name)
		if err == nil {
			c := s.CachedInfo().Config
			logger.Info("stream exists; its configuration is left as it is",
				"stream", want.Name, "replicas", c.Replicas, "storage", c.Storage.String())
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("eventlog: stream %s: %w", want.Name, err)
		}
		s, err = js.CreateStream(ctx, want)
		if err == nil {
			logger.Info("stream created", "stream", want.Name, "replicas", want.Replicas)
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("eventlog: create stream %s with %d replicas: %w", want.Name, want.Replicas, err)
		}
	}
	return nil, fmt.Errorf("eventlog: stream %s: created by another process and then not found", want.Name)
}

// Record is one event as stored: its stream sequence and time beside the event itself.
type Record struct {
	Seq    uint64
	Time   time.Time
	Event  *whistlev1.Event
	Header nats.Header
}

// Partitions is how many parts the stream's issues are split into, each with one owner per
// service at a time. It is part of the stream's subject layout, so it never changes for a stream:
// Open refuses a stream created with another layout.
const Partitions = 8

// Partition is the partition of an issue: a hash of its case number.
func Partition(issueID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(issueID))
	return int(h.Sum32() % Partitions)
}

// Subject is the subject of an issue's event of a kind.
func Subject(issueID, kind string) string {
	return SubjectRoot + "." + strconv.Itoa(Partition(issueID)) + "." + issueID + "." + kind
}

// IssueSubjects is the filter for every event of an issue.
func IssueSubjects(issueID string) string {
	return SubjectRoot + "." + strconv.Itoa(Partition(issueID)) + "." + issueID + ".>"
}

// PartitionSubjects is the filter for every event of a partition's issues.
func PartitionSubjects(p int) string { return SubjectRoot + "." + strconv.Itoa(p) + ".>" }

// PartitionTag is the Redis Cluster hash tag of the keys of partition p ("{p<n>}"): an index
// sharded by partition puts one shard in each, and an issue's writes to several such indexes go to
// one master.
func PartitionTag(p int) string { return "{p" + strconv.Itoa(p) + "}" }

// KindSubjects is the filter for every event of a kind, whatever its issue.
func KindSubjects(kind string) string { return SubjectRoot + ".*.*." + kind }

// Kind names an event by its payload, as the last token of its subject.
func Kind(ev *whistlev1.Event) string {
	switch ev.GetPayload().(type) {
	case *whistlev1.Event_Raised:
		return "raised"
	case *whistlev1.Event_Routed:
		return "routed"
	case *whistlev1.Event_NeedsDispatch:
		return "needs-dispatch"
	case *whistlev1.Event_Acknowledged:
		return "acknowledged"
	case *whistlev1.Event_Resolved:
		return "resolved"
	case *whistlev1.Event_Breached:
		return "breached"
	case *whistlev1.Event_Returned:
		return "returned"
	case *whistlev1.Event_Linked:
		return "linked"
	case *whistlev1.Event_Joined:
		return "joined"
	case *whistlev1.Event_Unlinked:
		return "unlinked"
	case *whistlev1.Event_Left:
		return "left"
	case *whistlev1.Event_Recategorised:
		return "recategorised"
	case *whistlev1.Event_Pushed:
		return "pushed"
	case *whistlev1.Event_HandedOver:
		return "handed-over"
	case *whistlev1.Event_Noted:
		return "noted"
	case *whistlev1.Event_ExtensionRequested:
		return "extension-requested"
	case *whistlev1.Event_Verified:
		return "verified"
	case *whistlev1.Event_Rated:
		return "rated"
	case *whistlev1.Event_Closed:
		return "closed"
	case *whistlev1.Event_Reminded:
		return "reminded"
	case *whistlev1.Event_Escalated:
		return "escalated"
	case *whistlev1.Event_Urged:
		return "urged"
	case *whistlev1.Event_ExtensionDecided:
		return "extension-decided"
	default:
		return "unknown"
	}
}

// Append publishes ev on the condition that the issue's last sequence is still ev.PrevSeq, and
// returns the event's stream sequence once JetStream has acknowledged it. A duplicate of an event
// already stored (same id, within the window) returns the stored sequence. A lost race returns a
// *ConflictError.
func (l *Log) Append(ctx context.Context, ev *whistlev1.Event) (uint64, error) {
	ack, err := l.append(ctx, ev)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// append is Append returning the whole PubAck, whose Duplicate flag Decide needs.
func (l *Log) append(ctx context.Context, ev *whistlev1.Event) (*jetstream.PubAck, error) {
	kind := Kind(ev)
	ctx, span := tracer.Start(ctx, "eventlog.Log.Append", trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	if span.IsRecording() { // unsampled, as most appends are, the attributes would go nowhere
		span.SetAttributes(attribute.String("whistle.issue", ev.GetIssueId()), attribute.String("whistle.event", kind))
	}
	msg, err := l.message(ctx, ev)
	if err != nil {
		return nil, err
	}
	ack, err := l.js.PublishMsg(ctx, msg)
	if err != nil {
		err = l.appendError(ctx, ev, err)
		if errors.As(err, new(*ConflictError)) {
			span.SetAttributes(attribute.Bool("whistle.conflict", true))
		} else {
			span.SetStatus(codes.Error, err.Error())
		}
		return nil, err
	}
	span.SetAttributes(attribute.Int64("whistle.seq", int64(ack.Sequence)), attribute.Bool("whistle.duplicate", ack.Duplicate))
	return ack, nil
}

// message is the message that appends ev, conditional on the issue's last sequence being ev's
// PrevSeq, under its deterministic message id, with the trace context of ctx.
func (l *Log) message(ctx context.Context, ev *whistlev1.Event) (*nats.Msg, error) {
	kind := Kind(ev)
	if l.readOnly {
		return nil, fmt.Errorf("append %s to %s: %w", kind, ev.GetIssueId(), ErrReadOnly)
	}
	if ev.GetIssueId() == "" || kind == "unknown" {
		return nil, fmt.Errorf("eventlog: an event needs an issue and a payload")
	}
	ev.Id = MsgID(ev)
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("eventlog: encode: %w", err)
	}
	msg := nats.NewMsg(Subject(ev.GetIssueId(), kind))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, ev.GetId())
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(ev.GetPrevSeq(), 10))
	msg.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, IssueSubjects(ev.GetIssueId()))
	if ev.GetCorrelationId() != "" {
		msg.Header.Set(HeaderCorrelationID, ev.GetCorrelationId())
	}
	otelx.InjectNATS(ctx, msg.Header)
	return msg, nil
}

// appendError is the error of an append of ev that the stream refused with err: a ConflictError
// when the issue had gained events since ev's PrevSeq.
func (l *Log) appendError(ctx context.Context, ev *whistlev1.Event, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		actual, ok := wrongLastSequence(apiErr.Description)
		if !ok {
			actual, _ = l.Last(ctx, ev.GetIssueId())
		}
		return &ConflictError{Expected: ev.GetPrevSeq(), Actual: actual}
	}
	return fmt.Errorf("eventlog: append %s: %w", Kind(ev), err)
}

// wrongLastSequence reads the issue's actual last sequence off the server's refusal of a
// conditional append ("wrong last sequence: 42"), sparing a request to the stream.
func wrongLastSequence(description string) (uint64, bool) {
	rest, ok := strings.CutPrefix(description, "wrong last sequence: ")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	return seq, err == nil
}

// Last returns the sequence of the issue's latest event, 0 when it has none.
func (l *Log) Last(ctx context.Context, issueID string) (uint64, error) {
	raw, err := l.stream.GetLastMsgForSubject(ctx, IssueSubjects(issueID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("eventlog: last of %s: %w", issueID, err)
	}
	return raw.Sequence, nil
}

// Read returns the issue's events after sequence after, in stream order. An event that cannot be
// decoded ends the read with an error.
func (l *Log) Read(ctx context.Context, issueID string, after uint64) ([]Record, error) {
	stored, err := l.read(ctx, issueID, after, math.MaxUint64)
	out := make([]Record, 0, len(stored))
	for _, s := range stored {
		if s.err != nil {
			return out, fmt.Errorf("eventlog: read %s at %d: %w", issueID, s.seq, s.err)
		}
		out = append(out, s.rec)
	}
	return out, err
}

// storedMsg is one message of an issue as the stream holds it: decoded into rec, or, when it cannot
// be, with err saying why.
type storedMsg struct {
	seq     uint64
	subject string
	rec     Record
	data    []byte
	header  nats.Header
	err     error
}

// dead describes the message as a dead letter.
func (s storedMsg) dead(deliveries uint64, reason error) DeadLetter {
	return DeadLetter{IssueID: IssueOf(s.subject), Subject: s.subject, Seq: s.seq, StoredAt: s.rec.Time,
		Deliveries: deliveries, Reason: reason.Error(), Data: s.data, Header: s.header}
}

// read returns the issue's messages with sequences above after and at most through, in order.
func (l *Log) read(ctx context.Context, issueID string, after, through uint64) ([]storedMsg, error) {
	var out []storedMsg
	for after < through {
		raw, err := l.stream.GetMsg(ctx, after+1, jetstream.WithGetMsgSubject(IssueSubjects(issueID)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("eventlog: read %s after %d: %w", issueID, after, err)
		}
		if raw.Sequence > through {
			return out, nil
		}
		out = append(out, storedOf(raw))
		after = raw.Sequence
	}
	return out, nil
}

// at returns the record stored at seq, which the caller knows the stream stored (an append's
// PubAck, a projection's position). A read may be answered by a replica of a clustered stream
// (direct gets) that has yet to store what its leader acknowledged: "not found" is then asked
// again, for up to MaxReplicaLag.
func (l *Log) at(ctx context.Context, seq uint64) (Record, error) {
	deadline := time.Now().Add(MaxReplicaLag)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		raw, err := l.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) && time.Now().Add(pause).Before(deadline) {
			select {
			case <-ctx.Done():
				return Record{}, ctx.Err()
			case <-time.After(pause):
				continue
			}
		}
		if err != nil {
			return Record{}, fmt.Errorf("eventlog: read %d: %w", seq, err)
		}
		s := storedOf(raw)
		return s.rec, s.err
	}
}

// MaxReplicaLag bounds how long a read of an event known to be stored waits for the replica
// that answers it to store it too.
const MaxReplicaLag = 2 * time.Second

// storedOf decodes a raw stream message.
func storedOf(raw *jetstream.RawStreamMsg) storedMsg {
	return newStoredMsg(raw.Sequence, raw.Subject, raw.Time, raw.Data, raw.Header)
}

// newStoredMsg decodes the message stored at seq on subject, at t.
func newStoredMsg(seq uint64, subject string, t time.Time, data []byte, header nats.Header) storedMsg {
	s := storedMsg{seq: seq, subject: subject, data: data, header: header}
	s.rec = Record{Seq: seq, Time: t, Header: header}
	s.rec.Event, s.err = decodeOn(subject, data)
	return s
}

// Now is the stream's clock: the time the server that stores the stream reads now. Events stored
// from here on carry this time or a later one, which is what judging a deadline "on the stream's
// clock" needs: a breach appended once Now has passed its deadline is stored after it.
func (l *Log) Now(ctx context.Context) (time.Time, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("eventlog: stream clock: %w", err)
	}
	if info.TimeStamp.IsZero() {
		return time.Time{}, errors.New("eventlog: the NATS server does not report its clock")
	}
	return info.TimeStamp, nil
}

// Issues returns the issues of partition p that the stream holds: those with a raise, which every
// issue begins with. The stream answers from its index of subjects, a page of up to 100,000 at a
// time, without reading a message; a projection that lost an issue's document whole (a Redis
// failover that lost acknowledged writes) can find it so.
func (l *Log) Issues(ctx context.Context, p int) ([]string, error) {
	info, err := l.stream.Info(ctx, jetstream.WithSubjectFilter(SubjectRoot+"."+strconv.Itoa(p)+".*.raised"))
	if err != nil {
		return nil, fmt.Errorf("eventlog: the issues of partition %d: %w", p, err)
	}
	ids := make([]string, 0, len(info.State.Subjects))
	for subject := range info.State.Subjects {
		parts := strings.Split(subject, ".")
		if len(parts) == 4 {
			ids = append(ids, parts[2])
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// StreamInfo returns the stream's current state, for tests and the replay command.
func (l *Log) StreamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	return l.stream.Info(ctx)
}

// decodeOn decodes the event stored on subject, which must name the event's issue and kind: an
// event filed under another issue's subjects would slip past that issue's conditional appends.
func decodeOn(subject string, data []byte) (*whistlev1.Event, error) {
	ev := &whistlev1.Event{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("undecodable event: %w", err)
	}
	if ev.GetIssueId() == "" || ev.GetPayload() == nil {
		return nil, errors.New("undecodable event: no issue or payload")
	}
	if want := Subject(ev.GetIssueId(), Kind(ev)); subject != want {
		return nil, fmt.Errorf("event of %s stored on %s", want, subject)
	}
	return ev, nil
}

// IssueOf is the issue named by an event subject whistle.<partition>.<issue>.<kind>, or "" when
// the subject has no such form.
func IssueOf(subject string) string {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != SubjectRoot || parts[2] == "" {
		return ""
	}
	return parts[2]
}

// MsgID is the message id of an event: its issue, the issue's sequence it was decided on, and its
// kind. It is unique per occurrence, since two events of an issue cannot both follow the same
// sequence, and deterministic for a retried decision on the same state, which JetStream then drops
// as a duplicate within its window (and the conditional append refuses after it).
func MsgID(ev *whistlev1.Event) string {
	return ev.GetIssueId() + "." + strconv.FormatUint(ev.GetPrevSeq(), 10) + "." + Kind(ev)
}

// DeadLetters returns the dead-letter stream, where consumers put what they could never process.
func (l *Log) DeadLetters() jetstream.Stream { return l.dead }
