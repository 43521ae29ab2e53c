package redisstore

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// CommandCounter is a go-redis hook that counts the commands a client sends,
// so tests and benchmarks can hold the store to its round-trip budget:
//
//	var n redisstore.CommandCounter
//	client.AddHook(&n)
//	before := n.Count()
//	... one store call ...
//	cost := n.Count() - before
//
// A script not yet cached by the server costs one extra command (EVALSHA,
// then EVAL); connection set-up and pub/sub are not counted. RoundTrips
// counts a pipeline once: its commands travel together and the caller
// waits for one answer.
type CommandCounter struct {
	n    atomic.Int64
	trip atomic.Int64
}

var _ redis.Hook = (*CommandCounter)(nil)

// Count returns the number of commands sent so far.
func (c *CommandCounter) Count() int64 { return c.n.Load() }

// RoundTrips returns the number of commands and pipelines sent so far.
func (c *CommandCounter) RoundTrips() int64 { return c.trip.Load() }

// DialHook implements redis.Hook.
func (c *CommandCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

// ProcessHook implements redis.Hook.
func (c *CommandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		c.trip.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *CommandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		c.trip.Add(1)
		return next(ctx, cmds)
	}
}
