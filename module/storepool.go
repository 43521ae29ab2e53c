package otpgate

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

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
