package otpgate

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/gateway"
	"github.com/otpgate/otpgate/module/store"
	"github.com/otpgate/otpgate/module/store/memstore"
	"github.com/otpgate/otpgate/module/store/redisstore"
)

// stores keeps stores alive across config reloads: a reload provisions the
// new config (one more user) before cleaning up the old one, so the Redis
// client and the memory store's sessions survive, and the store is closed
// when its last config goes.
var stores = caddy.NewUsagePool()

type pooledStore struct{ store.Store }

func (p pooledStore) Destruct() error { return p.Store.Close() }

func acquireStore(c *StoreConfig, expand func(string) string, log *zap.Logger) (store.Store, string, error) {
	typ, url := "memory", ""
	if c != nil && c.Type != "" {
		typ = c.Type
		url = expand(c.URL)
	}
	switch typ {
	case "memory":
		v, loaded, err := stores.LoadOrNew("memory", func() (caddy.Destructor, error) {
			return pooledStore{memstore.New()}, nil
		})
		if err != nil {
			return nil, "", err
		}
		if !loaded {
			log.Warn("store memory: state lives in this process only; run a single instance, or use `store redis` to share it")
		}
		return v.(pooledStore).Store, "memory", nil
	case "redis":
		opts, err := redisstore.ParseURL(url)
		if err != nil {
			return nil, "", fmt.Errorf("otpgate: store redis %s: %w", redactURL(url), err)
		}
		key := "redis:" + url
		redisLog.install(log)
		v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
			return pooledStore{redisstore.New(newUniversalClient(opts))}, nil
		})
		if err != nil {
			return nil, "", err
		}
		return v.(pooledStore).Store, key, nil
	}
	return nil, "", fmt.Errorf("otpgate: store: unknown type %q (want memory or redis)", typ)
}

func newUniversalClient(opts *redis.UniversalOptions) redis.UniversalClient {
	return redis.NewUniversalClient(opts)
}

// redisLog routes go-redis's own messages (a dropped pub/sub connection, a
// pool that cannot dial) through Caddy's zap logger: its default logger
// writes plain text to stderr, which breaks JSON log pipelines.
//
// go-redis has one logger per process (redis.SetLogger), not one per
// client, so it is set once, and each otpgate app that starts hands it its
// logger: a reload that changes Caddy's logging takes it along. That is
// acceptable because a Caddy process runs one config at a time, and the
// otpgate app is the only user of go-redis in it; a config being
// validated next to a running one never replaces the running one's
// logger (it is not started).
var redisLog redisLogger

type redisLogger struct {
	once sync.Once
	l    atomic.Pointer[zap.Logger]
}

// follow makes go-redis log through l. The first call installs the
// adapter; later calls only swap the logger.
func (r *redisLogger) follow(l *zap.Logger) {
	r.l.Store(l.Named("redis"))
	r.once.Do(func() { redis.SetLogger(r) })
}

// install routes go-redis through l unless an app already set a logger.
func (r *redisLogger) install(l *zap.Logger) {
	r.once.Do(func() {
		r.l.Store(l.Named("redis"))
		redis.SetLogger(r)
	})
}

// Printf implements go-redis's logger. Its messages are trouble reports
// (connection lost, retrying), hence warnings.
func (r *redisLogger) Printf(_ context.Context, format string, v ...any) {
	if l := r.l.Load(); l != nil {
		l.Warn(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
	}
}

// processMetrics are otpgate's collectors for the life of the process.
// Caddy makes a new Prometheus registry for each config it loads;
// registering the same collectors with each keeps the counters counting
// across reloads, as Prometheus counters must.
var processMetrics = sync.OnceValue(func() *gateway.Metrics { return gateway.NewMetrics(nil) })

// appliedLists holds, across reloads, the users list (with the test
// phones) that the running config applied when it started, so that the
// config replacing it learns whose access shrank. Only App.Start changes
// it: `caddy validate` provisions and cleans up but never starts.
var appliedLists = caddy.NewUsagePool()

const appliedListKey = "users-list"

// appliedList is the last applied list, and the one before it for a
// config that is stopped because another of its apps failed to start.
type appliedList struct {
	mu     sync.Mutex
	gen    uint64 // generation of list; 0: nothing applied yet
	list   map[string][]string
	before struct {
		gen  uint64
		list map[string][]string
	}
	next uint64
}

// apply records cur as the applied list and returns the phones of the
// previous list whose access cur shrinks, and cur's generation.
func (l *appliedList) apply(cur map[string][]string) (lost []string, gen uint64, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first = l.gen == 0 && l.before.gen == 0
	lost = gateway.Shrunk(l.list, cur)
	l.before.gen, l.before.list = l.gen, l.list
	l.next++
	l.gen, l.list = l.next, cur
	return lost, l.gen, first
}

// unapply restores the list that generation gen replaced, if gen is still
// the applied one (a config stopped after a successor started changes
// nothing).
func (l *appliedList) unapply(gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen != gen {
		return
	}
	l.gen, l.list = l.before.gen, l.before.list
	l.before.gen, l.before.list = 0, nil
}

// Destruct implements caddy.Destructor.
func (*appliedList) Destruct() error { return nil }
