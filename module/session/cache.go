package session

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// DefaultCacheEntries bounds the verified-token cache when no size is given.
const DefaultCacheEntries = 100_000

const (
	maxShards       = 64
	minShardEntries = 16
	revokedShards   = 64
	minPruneAt      = 64
)

// Cache spares the gate a signature check per request: a full ES256 verify
// costs tens of microseconds, a hit here well under one. It also holds the
// set of revoked sessions, which the gate must consult on hits and misses
// alike, since a cached token says nothing about a logout that came later.
//
// Entries are keyed by the token string itself. A SHA-256 key would save
// memory and keep bearer tokens out of the heap, but hashing a 600-byte
// token costs ~10x the map lookup, on every gated request, against a 5%
// throughput budget; and the signing key shares this heap anyway. Exact
// string keys cannot collide, and Go's maps hash strings with a per-map
// random seed, so crafted tokens cannot pile into one bucket. Only tokens
// Verify accepted are stored, i.e. tokens this gateway signed, so an entry
// is about 1 KB: some 100 MB at the default bound.
//
// A Cache belongs to one Tokens: entries were verified against its key ring
// and stay trusted until they expire.
type Cache struct {
	shards    []tokenShard
	shardMask uint64
	shardSeed maphash.Seed
	perShard  int

	// clock is the latest Unix second seen by Get or Revoked. It lets Put and
	// Revoke prune without a clock of their own, keeping time injectable.
	clock paddedInt64

	revoked  [revokedShards]revokedShard
	revSeed  maphash.Seed
	revCount atomic.Int64 // lets Revoked skip all locking when nothing is revoked
}

type cacheEntry struct {
	claims Claims
	exp    int64 // Unix nanoseconds; the entry is dead from this instant
}

// Shards are padded to separate cache lines so readers of one shard do not
// slow readers of its neighbours through the RWMutex's reader count.
type tokenShard struct {
	mu sync.RWMutex
	m  map[string]cacheEntry
	_  [128 - unsafe.Sizeof(sync.RWMutex{}) - unsafe.Sizeof(map[int]int(nil))]byte
}

type revokedShard struct {
	mu      sync.RWMutex
	m       map[string]int64 // session id → Unix nanoseconds until which it is revoked
	pruneAt int
	_       [128 - unsafe.Sizeof(sync.RWMutex{}) - unsafe.Sizeof(map[int]int(nil)) - unsafe.Sizeof(int(0))]byte
}

type paddedInt64 struct {
	atomic.Int64
	_ [120]byte
}

// NewCache makes a cache holding at most maxEntries verified tokens
// (DefaultCacheEntries when maxEntries <= 0).
func NewCache(maxEntries int) *Cache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	n := maxShards
	for n > 1 && maxEntries/n < minShardEntries {
		n /= 2
	}
	c := &Cache{
		shards:    make([]tokenShard, n),
		shardMask: uint64(n - 1),
		shardSeed: maphash.MakeSeed(),
		perShard:  maxEntries / n,
		revSeed:   maphash.MakeSeed(),
	}
	for i := range c.shards {
		c.shards[i].m = make(map[string]cacheEntry)
	}
	for i := range c.revoked {
		c.revoked[i].m = make(map[string]int64)
		c.revoked[i].pruneAt = minPruneAt
	}
	return c
}

// Get returns the claims of a token verified earlier, if it has not expired
// by now. The AMR slice is shared with the cache and must not be modified.
func (c *Cache) Get(token string, now time.Time) (Claims, bool) {
	c.observe(now)
	s := c.shard(token)
	s.mu.RLock()
	e, ok := s.m[token]
	s.mu.RUnlock()
	if !ok || now.UnixNano() >= e.exp {
		return Claims{}, false
	}
	return e.claims, true
}

// Put remembers a token that Verify accepted. It is dropped at the token's
// exp; Verify's leeway past exp is deliberately not cached, so a nearly
// expired token goes back through Verify and the refresh path.
func (c *Cache) Put(token string, claims Claims) {
	if claims.ExpiresAt.IsZero() || len(token) > MaxTokenBytes {
		return
	}
	// The clone detaches the key from whatever the caller sliced it out of,
	// such as a whole Cookie header, so the cache pins only the token.
	token = strings.Clone(token)
	s := c.shard(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, present := s.m[token]; !present && len(s.m) >= c.perShard {
		c.evict(s)
	}
	s.m[token] = cacheEntry{claims: claims, exp: claims.ExpiresAt.UnixNano()}
}

// evict makes room in a full shard: expired entries first, then arbitrary
// ones (Go's map order is randomised, which is fair enough for a cache whose
// misses only cost a verify). It frees a sixteenth of the shard at once so
// the scan is paid once per many inserts, not on each.
func (c *Cache) evict(s *tokenShard) {
	now := c.clock.Load() * int64(time.Second)
	target := c.perShard - max(1, c.perShard/16)
	for k, e := range s.m {
		if e.exp <= now {
			delete(s.m, k)
		}
	}
	for k := range s.m {
		if len(s.m) <= target {
			break
		}
		delete(s.m, k)
	}
}

// Revoke marks sessions as logged out until the given time, which should be
// the longest an access token can live: after it no token of the session can
// pass Verify anyway, so the entry is pruned.
func (c *Cache) Revoke(sessionIDs []string, until time.Time) {
	u := until.UnixNano()
	for _, id := range sessionIDs {
		if id == "" {
			continue
		}
		s := &c.revoked[maphash.String(c.revSeed, id)%revokedShards]
		s.mu.Lock()
		old, present := s.m[id]
		if !present {
			c.revCount.Add(1)
		}
		s.m[id] = max(old, u)
		if len(s.m) >= s.pruneAt {
			c.pruneRevoked(s)
		}
		s.mu.Unlock()
	}
}

// pruneRevoked drops entries past their until. The threshold doubles with
// the live size so pruning stays amortised O(1) per Revoke.
func (c *Cache) pruneRevoked(s *revokedShard) {
	now := c.clock.Load() * int64(time.Second)
	for id, until := range s.m {
		if until <= now {
			delete(s.m, id)
			c.revCount.Add(-1)
		}
	}
	s.pruneAt = max(minPruneAt, 2*len(s.m))
}

// Revoked reports whether a session was logged out and now is before the
// end of its revocation.
func (c *Cache) Revoked(sessionID string, now time.Time) bool {
	c.observe(now)
	if c.revCount.Load() == 0 {
		return false
	}
	s := &c.revoked[maphash.String(c.revSeed, sessionID)%revokedShards]
	s.mu.RLock()
	until, ok := s.m[sessionID]
	s.mu.RUnlock()
	return ok && now.UnixNano() < until
}

// observe advances the cache's notion of time. It writes at most once a
// second, so the shared word stays in every core's cache.
func (c *Cache) observe(now time.Time) {
	if sec := now.Unix(); sec > c.clock.Load() {
		c.clock.Store(sec)
	}
}

// shard hashes only the token's tail: it lies in the signature, which is
// uniformly random for every token worth caching, and hashing 16 bytes
// instead of 600 keeps the hot path short.
func (c *Cache) shard(token string) *tokenShard {
	return &c.shards[maphash.String(c.shardSeed, token[max(0, len(token)-16):])&c.shardMask]
}

// len counts cached tokens, for tests.
func (c *Cache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}
