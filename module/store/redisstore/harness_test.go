package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpgate/otpgate/module/store"
)

// The key layout of the package documentation, as the tests read it.
const revLogKey = "otpgate:{rev}:log"

// personKey is the key of one part of a person's records.
func personKey(u store.UserKey, part string) string {
	return "otpgate:{" + string(u) + "}:" + part
}

// hashTag is the part of a key Redis Cluster hashes.
func hashTag(k string) string {
	if i := strings.IndexByte(k, '{'); i >= 0 {
		if j := strings.IndexByte(k[i+1:], '}'); j > 0 {
			return k[i+1 : i+1+j]
		}
	}
	return k
}

// slotChecker is a client hook that records every script call whose keys,
// or key prefixes passed as arguments, span more than one hash tag.
type slotChecker struct {
	mu   sync.Mutex
	bad  []string
	seen int
}

func (h *slotChecker) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *slotChecker) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *slotChecker) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		name := strings.ToLower(fmt.Sprint(a[0]))
		if name == "evalsha" || name == "eval" {
			n, _ := strconv.Atoi(fmt.Sprint(a[2]))
			keys := a[3 : 3+n]
			argv := a[3+n:]
			h.mu.Lock()
			h.seen++
			tag := hashTag(fmt.Sprint(keys[0]))
			for _, k := range keys {
				if hashTag(fmt.Sprint(k)) != tag {
					h.bad = append(h.bad, fmt.Sprint(a))
				}
			}
			// key prefixes passed as ARGV and completed inside Lua
			for _, v := range argv {
				if s, ok := v.(string); ok && strings.HasPrefix(s, "otpgate:{") && hashTag(s) != tag {
					h.bad = append(h.bad, "argv key "+s+" in "+fmt.Sprint(a))
				}
			}
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

// healthFeed is a store.FeedHandler that counts revocations and passes
// on every health report.
type healthFeed struct {
	mu      sync.Mutex
	n       int
	healthy chan bool
}

func (f *healthFeed) Revoked(ids []string) { f.mu.Lock(); f.n += len(ids); f.mu.Unlock() }
func (f *healthFeed) Healthy(ok bool)      { f.healthy <- ok }
func (f *healthFeed) Epoch(time.Time)      {}
