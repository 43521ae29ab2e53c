package session

import (
	"context"

	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"
)

// t0 is the fixed "now" of every test; nothing here reads the wall clock.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	testIssuer   = "https://app.example.com/auth/v1"
	testAudience = "authenticated"
)

// RSA generation is slow; tests that need an RS256 key share one.
var testRSAKey = sync.OnceValue(func() Key {
	k, err := GenerateKey(AlgRS256)
	if err != nil {
		panic(err)
	}
	return k
})

func mustKey(t testing.TB, alg string) Key {
	t.Helper()
	switch alg {
	case AlgRS256:
		return testRSAKey()
	case AlgHS256:
		k, err := HMACKey([]byte("0123456789abcdef0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testClaims(now time.Time) Claims {
	return Claims{
		Subject:   "8f0c3a8e-5d7e-4c1b-9a51-1f4f6c2b7d10",
		Phone:     "+15551234567",
		SessionID: "2b4f9a0e-1c3d-4e5f-8a7b-9c0d1e2f3a4b",
		IssuedAt:  now,
		ExpiresAt: now.Add(time.Hour),
	}
}

// memStorage is an in-memory stand-in for certmagic.Storage with real,
// blocking locks, so concurrency tests exercise the same protocol.
type memStorage struct {
	mu     sync.Mutex
	data   map[string][]byte
	locks  map[string]chan struct{}
	stores int
	// loadErr, when set, makes Load fail for existing keys too.
	loadErr error
}

func newMemStorage() *memStorage {
	return &memStorage{data: map[string][]byte{}, locks: map[string]chan struct{}{}}
}

func (m *memStorage) lockChan(name string) chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, ok := m.locks[name]
	if !ok {
		ch = make(chan struct{}, 1)
		m.locks[name] = ch
	}
	return ch
}

func (m *memStorage) Lock(ctx context.Context, name string) error {
	select {
	case m.lockChan(name) <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *memStorage) Unlock(_ context.Context, name string) error {
	select {
	case <-m.lockChan(name):
		return nil
	default:
		return fmt.Errorf("unlock %s: not locked", name)
	}
}

func (m *memStorage) Store(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[key] = append([]byte(nil), value...)
	m.stores++
	return nil
}

func (m *memStorage) Load(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loadErr != nil {
		return nil, m.loadErr
	}
	v, ok := m.data[key]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return append([]byte(nil), v...), nil
}

func (m *memStorage) Exists(_ context.Context, key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.data[key]
	return ok
}

// Compile-time check that the fake, like certmagic's storages, satisfies Storage.
var _ Storage = (*memStorage)(nil)
