package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// redis-server rewrites its append-only file once the file has grown by a share of its size after
// the last rewrite (auto-aof-rewrite-percentage, 100 by default). A rewrite forks and writes the
// whole dataset out again, which costs the machine more CPU than the writes that set it off, and
// whether one falls inside a measured phase depends only on how far the file had grown before it.
// So the timer bench holds automatic rewrites off over the storm, measures one rewrite of its own
// right after, and charges each breach its share of it: the bytes it appended over the bytes
// between two rewrites.

// AOFRewrite is one rewrite of the append-only file, and what it makes each byte appended cost.
type AOFRewrite struct {
	// CPU is what redis-server and its rewriting child spent on it, and Base the file's size
	// after it, from which the next one is counted.
	CPU  time.Duration
	Base int64
	// Percent is how much the file grows past Base before redis-server rewrites it again, as it
	// was configured before the bench held rewrites off.
	Percent int64
	// Missing says why the rewrite was not measured; empty when it was.
	Missing string
}

// Amortized is a rewrite's share owed by appending bytes: a rewrite every Base×Percent/100 bytes
// appended. Zero when the rewrite was not measured or rewrites are turned off.
func (r AOFRewrite) Amortized(bytes int64) time.Duration {
	if r.Missing != "" || r.Base <= 0 || r.Percent <= 0 {
		return 0
	}
	every := float64(r.Base) * float64(r.Percent) / 100
	return time.Duration(float64(r.CPU) * float64(bytes) / every)
}

// persistence reads INFO persistence.
func persistence(ctx context.Context, rdb redis.UniversalClient) (map[string]string, error) {
	info, err := rdb.Info(ctx, "persistence").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO persistence: %w", err)
	}
	return infoFields(info), nil
}

// aofSize is the append-only file's current size and the count of rewrites so far.
func aofSize(ctx context.Context, rdb redis.UniversalClient) (size, rewrites int64, err error) {
	f, err := persistence(ctx, rdb)
	if err != nil {
		return 0, 0, err
	}
	if f["aof_enabled"] != "1" {
		return 0, 0, fmt.Errorf("the append-only file is off")
	}
	size, errSize := strconv.ParseInt(f["aof_current_size"], 10, 64)
	rewrites, errCount := strconv.ParseInt(f["aof_rewrites"], 10, 64)
	if errSize != nil || errCount != nil {
		return 0, 0, fmt.Errorf("INFO persistence: aof_current_size %q, aof_rewrites %q", f["aof_current_size"], f["aof_rewrites"])
	}
	return size, rewrites, nil
}

// holdAOFRewrites turns automatic rewrites off, waits for one under way to end, and returns the
// growth percentage they were set to, for restoreAOFRewrites.
func holdAOFRewrites(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	got, err := rdb.ConfigGet(ctx, "auto-aof-rewrite-percentage").Result()
	if err != nil {
		return 0, fmt.Errorf("CONFIG GET auto-aof-rewrite-percentage: %w", err)
	}
	percent, err := strconv.ParseInt(got["auto-aof-rewrite-percentage"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("auto-aof-rewrite-percentage %q: %w", got["auto-aof-rewrite-percentage"], err)
	}
	if err := rdb.ConfigSet(ctx, "auto-aof-rewrite-percentage", "0").Err(); err != nil {
		return 0, fmt.Errorf("CONFIG SET auto-aof-rewrite-percentage: %w", err)
	}
	return percent, waitAOFRewrite(ctx, rdb)
}

// restoreAOFRewrites turns automatic rewrites back on at percent.
func restoreAOFRewrites(ctx context.Context, rdb redis.UniversalClient, percent int64) error {
	return rdb.ConfigSet(ctx, "auto-aof-rewrite-percentage", strconv.FormatInt(percent, 10)).Err()
}

// waitAOFRewrite returns once no rewrite is under way or scheduled.
func waitAOFRewrite(ctx context.Context, rdb redis.UniversalClient) error {
	for {
		f, err := persistence(ctx, rdb)
		if err != nil {
			return err
		}
		if f["aof_rewrite_in_progress"] == "0" && f["aof_rewrite_scheduled"] == "0" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// measureAOFRewrite rewrites the append-only file now, with nothing else writing, and returns
// what it cost; percent is the growth that sets the next one off.
func measureAOFRewrite(ctx context.Context, rdb redis.UniversalClient, cpu func(context.Context) (float64, error), percent int64) AOFRewrite {
	r := AOFRewrite{Percent: percent}
	_, before, err := aofSize(ctx, rdb)
	var cpuBefore, cpuAfter float64
	if err == nil {
		cpuBefore, err = cpu(ctx)
	}
	if err == nil {
		err = rdb.BgRewriteAOF(ctx).Err()
	}
	if err == nil {
		err = waitAOFRewrite(ctx, rdb)
	}
	var after int64
	if err == nil {
		_, after, err = aofSize(ctx, rdb)
	}
	if err == nil && after != before+1 {
		err = fmt.Errorf("%d rewrites ran where one was asked for", after-before)
	}
	if err == nil {
		cpuAfter, err = cpu(ctx) // the child's CPU is counted once it has exited
	}
	var f map[string]string
	if err == nil {
		f, err = persistence(ctx, rdb)
	}
	if err == nil {
		r.Base, err = strconv.ParseInt(f["aof_base_size"], 10, 64)
	}
	if err != nil {
		r.Missing = err.Error()
		return r
	}
	r.CPU = time.Duration((cpuAfter - cpuBefore) * float64(time.Second))
	return r
}
