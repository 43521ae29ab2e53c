package session

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func cachedClaims(sessionID string, exp time.Time) Claims {
	c := testClaims(t0)
	c.SessionID = sessionID
	c.ExpiresAt = exp
	return c
}

func TestCache_Hit_ReturnsClaims(t *testing.T) {
	c := NewCache(0)
	want := cachedClaims("s1", t0.Add(time.Hour))
	c.Put("token-1", want)
	got, ok := c.Get("token-1", t0)
	if !ok || got.SessionID != "s1" || got.Subject != want.Subject {
		t.Fatalf("Get = %+v, %v", got, ok)
	}
	if _, ok := c.Get("token-2", t0); ok {
		t.Fatal("hit for a token never put")
	}
	if _, ok := c.Get("token-1x", t0); ok {
		t.Fatal("hit for a token sharing a prefix")
	}
}

func TestCache_Entry_DroppedAtExp(t *testing.T) {
	c := NewCache(0)
	exp := t0.Add(time.Minute)
	c.Put("tok", cachedClaims("s", exp))
	if _, ok := c.Get("tok", exp.Add(-time.Nanosecond)); !ok {
		t.Fatal("miss just before exp")
	}
	if _, ok := c.Get("tok", exp); ok {
		t.Fatal("hit at exp")
	}
}

func TestCache_NoExpiry_NotCached(t *testing.T) {
	c := NewCache(0)
	c.Put("tok", Claims{SessionID: "s"})
	if _, ok := c.Get("tok", t0); ok {
		t.Fatal("claims without exp were cached")
	}
}

func TestCache_Oversized_NotCached(t *testing.T) {
	c := NewCache(0)
	big := string(make([]byte, MaxTokenBytes+1))
	c.Put(big, cachedClaims("s", t0.Add(time.Hour)))
	if c.len() != 0 {
		t.Fatal("oversized token cached")
	}
}

func TestCache_Size_Bounded(t *testing.T) {
	for _, limit := range []int{1, 10, 1000, 5000} {
		c := NewCache(limit)
		for i := range 4 * limit {
			c.Put(fmt.Sprint("tok-", i), cachedClaims("s", t0.Add(time.Hour)))
		}
		if n := c.len(); n > limit || n == 0 {
			t.Errorf("limit %d: %d entries", limit, n)
		}
	}
}

func TestCache_Full_EvictsExpiredFirst(t *testing.T) {
	c := NewCache(minShardEntries) // a single shard of 16
	for i := range minShardEntries {
		c.Put(fmt.Sprint("old-", i), cachedClaims("s", t0.Add(time.Minute)))
	}
	later := t0.Add(2 * time.Minute)
	c.Get("anything", later) // the cache learns the time from its readers
	for i := range minShardEntries {
		c.Put(fmt.Sprint("new-", i), cachedClaims("s", later.Add(time.Hour)))
	}
	for i := range minShardEntries {
		if _, ok := c.Get(fmt.Sprint("new-", i), later); !ok {
			t.Fatalf("live entry new-%d evicted while expired ones could go", i)
		}
	}
}

func TestCache_Put_Overwrites(t *testing.T) {
	c := NewCache(minShardEntries)
	for i := range 3 * minShardEntries {
		c.Put("same", cachedClaims(fmt.Sprint("s", i), t0.Add(time.Hour)))
	}
	got, ok := c.Get("same", t0)
	if !ok || got.SessionID != fmt.Sprint("s", 3*minShardEntries-1) || c.len() != 1 {
		t.Fatalf("Get = %v, %v; len %d", got.SessionID, ok, c.len())
	}
}

func TestCache_Revoked_UntilGivenTime(t *testing.T) {
	c := NewCache(0)
	until := t0.Add(time.Hour)
	if c.Revoked("s1", t0) {
		t.Fatal("revoked before Revoke")
	}
	c.Revoke([]string{"s1", "s2"}, until)
	for _, id := range []string{"s1", "s2"} {
		if !c.Revoked(id, t0) || !c.Revoked(id, until.Add(-time.Nanosecond)) {
			t.Fatalf("%s not revoked", id)
		}
		if c.Revoked(id, until) {
			t.Fatalf("%s still revoked at until", id)
		}
	}
	if c.Revoked("s3", t0) {
		t.Fatal("unrelated session revoked")
	}
}

func TestCache_Revoke_KeepsLaterUntil(t *testing.T) {
	c := NewCache(0)
	c.Revoke([]string{"s"}, t0.Add(time.Hour))
	c.Revoke([]string{"s"}, t0.Add(time.Minute))
	if !c.Revoked("s", t0.Add(30*time.Minute)) {
		t.Fatal("an earlier until shortened a revocation")
	}
}

func TestCache_Revoked_PrunedAfterUntil(t *testing.T) {
	c := NewCache(0)
	const n = 10 * revokedShards * minPruneAt
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("old-", i)
	}
	c.Revoke(ids, t0.Add(time.Hour))
	if got := c.revCount.Load(); got != n {
		t.Fatalf("revCount = %d, want %d", got, n)
	}
	later := t0.Add(2 * time.Hour)
	c.Revoked("x", later)
	fresh := make([]string, n)
	for i := range fresh {
		fresh[i] = fmt.Sprint("new-", i)
	}
	c.Revoke(fresh, later.Add(time.Hour))
	if got := c.revCount.Load(); got > n+n/4 {
		t.Fatalf("revCount = %d: expired revocations not pruned", got)
	}
	for _, id := range fresh[:100] {
		if !c.Revoked(id, later) {
			t.Fatal("live revocation pruned")
		}
	}
}

func TestCache_Revoke_EmptyIDIgnored(t *testing.T) {
	c := NewCache(0)
	c.Revoke([]string{""}, t0.Add(time.Hour))
	if c.Revoked("", t0) || c.revCount.Load() != 0 {
		t.Fatal("empty session id revoked")
	}
}

func TestCache_ConcurrentUse(t *testing.T) {
	c := NewCache(256)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				now := t0.Add(time.Duration(i) * time.Second)
				tok := fmt.Sprint("tok-", g, "-", i%300)
				c.Put(tok, cachedClaims(fmt.Sprint("s-", i%50), now.Add(time.Minute)))
				if got, ok := c.Get(tok, now); ok && got.SessionID == "" {
					t.Error("torn entry")
				}
				if i%10 == 0 {
					c.Revoke([]string{fmt.Sprint("s-", i%50)}, now.Add(time.Minute))
				}
				c.Revoked(fmt.Sprint("s-", i%50), now)
			}
		}()
	}
	wg.Wait()
	if n := c.len(); n > 256 {
		t.Fatalf("%d entries over a limit of 256", n)
	}
}

func TestCache_GetHit_NoAllocations(t *testing.T) {
	c := NewCache(0)
	tk := newTestTokens(t, AlgES256)
	tok := sign(t, tk, testClaims(t0))
	claims, err := tk.Verify(tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	c.Put(tok, claims)
	c.Revoke([]string{"other"}, t0.Add(time.Hour))
	allocs := testing.AllocsPerRun(1000, func() {
		got, ok := c.Get(tok, t0)
		if !ok || c.Revoked(got.SessionID, t0) {
			t.Fatal("miss")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per hit", allocs)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	tk := newTestTokens(b, AlgES256)
	c := NewCache(0)
	// Many distinct users, as in production: one hot token would measure
	// contention on a single shard instead.
	toks := make([]string, 1024)
	for i := range toks {
		cl := testClaims(t0)
		cl.SessionID = NewSessionID()
		toks[i] = sign(b, tk, cl)
		c.Put(toks[i], cl)
	}
	c.Revoke([]string{NewSessionID()}, t0.Add(time.Hour))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			cl, ok := c.Get(toks[i&1023], t0)
			if !ok || c.Revoked(cl.SessionID, t0) {
				b.Fatal("miss")
			}
			i++
		}
	})
}
