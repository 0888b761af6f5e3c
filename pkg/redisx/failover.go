package redisx

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster clients find a promoted replica soon after its master dies. go-redis learns the
// cluster's layout at start, again when a node answers MOVED, and otherwise only when the layout
// it holds is older than ClusterStateReloadInterval (60 s by default) and a command comes. A
// master that dies answers nothing, let alone MOVED: until the layout was read again, every
// command for its slots would go on dialling it, for up to a minute after its replica took over.
const (
	// clusterReload bounds the age of the layout a busy cluster client works with.
	clusterReload = time.Second
	// clusterDialTimeout bounds a dial to a node that does not answer (a host that went away),
	// so that a command gives up on it, and the layout is read again, within a second rather than
	// go-redis's 5 s.
	clusterDialTimeout = time.Second
)

// tuneCluster sets the options of a cluster client that a URL does not: the reload interval, and
// the dial timeout when the URL gives none.
func tuneCluster(opts *redis.ClusterOptions) {
	opts.ClusterStateReloadInterval = clusterReload
	if opts.DialTimeout == 0 {
		opts.DialTimeout = clusterDialTimeout
	}
}

// reloadOnFailure is a go-redis hook on a cluster client that asks it to read the layout again
// as soon as a command or pipeline fails on the network (a refused or reset connection, a
// timeout): the node it went to may have died and its replica taken its slots. go-redis runs one
// reload at a time, with a pause between, however many commands ask.
type reloadOnFailure struct{ c *redis.ClusterClient }

var _ redis.Hook = reloadOnFailure{}

// DialHook leaves dialling alone.
func (reloadOnFailure) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook reloads after a command that failed on the network.
func (h reloadOnFailure) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(err)
		return err
	}
}

// ProcessPipelineHook reloads after a pipeline that failed on the network.
func (h reloadOnFailure) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(err)
		for _, cmd := range cmds {
			h.check(cmd.Err())
		}
		return err
	}
}

func (h reloadOnFailure) check(err error) {
	if networkFailure(err) {
		h.c.ReloadState(context.Background())
	}
}

// networkFailure reports whether err says the node could not be reached or the connection broke,
// rather than that Redis answered with an error.
func networkFailure(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
