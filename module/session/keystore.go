package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Storage is the part of certmagic.Storage this package needs, declared here
// with identical signatures so Caddy's configured storage plugs in directly
// while this package stays free of Caddy.
type Storage interface {
	Lock(ctx context.Context, name string) error
	Unlock(ctx context.Context, name string) error
	Store(ctx context.Context, key string, value []byte) error
	Load(ctx context.Context, key string) ([]byte, error)
	Exists(ctx context.Context, key string) bool
}

// Storage keys of the signing keys. Every instance sharing storage reads the
// same two, which is what lets any instance verify any other's tokens.
const (
	CurrentKeyPath  = "otpgate/keys/current.pem"
	PreviousKeyPath = "otpgate/keys/previous.pem"
)

// LoadOrCreate returns the value at key, creating it once if it is missing.
// Creation happens under the storage lock and re-checks existence inside it,
// so instances starting together all end up with the first writer's value
// instead of each minting its own signing key or server secret.
func LoadOrCreate(ctx context.Context, st Storage, key string, create func() ([]byte, error)) ([]byte, error) {
	// The common case, a value already there, needs no lock: locks in
	// certmagic's file storage are files and cost round trips.
	if v, err := st.Load(ctx, key); err == nil {
		return v, nil
	}
	if err := st.Lock(ctx, key); err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	defer unlock(ctx, st, key)
	// Existence, not the Load error, decides: storage plugins do not all
	// return fs.ErrNotExist, and overwriting a value that exists but failed
	// to load would log out every user.
	if st.Exists(ctx, key) {
		v, err := st.Load(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", key, err)
		}
		return v, nil
	}
	v, err := create()
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	if err := st.Store(ctx, key, v); err != nil {
		return nil, fmt.Errorf("store %s: %w", key, err)
	}
	return v, nil
}

// unlock runs even when ctx is already cancelled: a lock left behind would
// stall every other instance until it expires.
func unlock(ctx context.Context, st Storage, name string) {
	_ = st.Unlock(context.WithoutCancel(ctx), name)
}

// LoadKeyRing returns the shared signing keys, generating the current key on
// first use. A stored key of another algorithm than alg is an error rather
// than a silent rotation: instances still running the old config would
// rotate it back, and every rotation logs users out sooner.
func LoadKeyRing(ctx context.Context, st Storage, alg string) (KeyRing, error) {
	ring, found, err := ReadKeyRing(ctx, st, alg)
	if err != nil || found {
		return ring, err
	}
	k, err := GenerateKey(alg)
	if err != nil {
		return KeyRing{}, fmt.Errorf("load key ring: %w", err)
	}
	return CreateKeyRing(ctx, st, k)
}

// ReadKeyRing returns the stored signing keys and writes nothing, so that
// provisioning a config (which `caddy validate` also does) changes no
// storage; found is false when no key has been generated yet.
func ReadKeyRing(ctx context.Context, st Storage, alg string) (ring KeyRing, found bool, err error) {
	if alg == "" {
		alg = DefaultAlg
	}
	if alg == AlgHS256 {
		return KeyRing{}, false, errors.New("load key ring: HS256 uses hmac_secret, not stored keys")
	}
	if alg != AlgES256 && alg != AlgEdDSA && alg != AlgRS256 {
		return KeyRing{}, false, fmt.Errorf("load key ring: unsupported algorithm %q (want ES256, EdDSA or RS256)", alg)
	}
	pemBytes, found, err := Load(ctx, st, CurrentKeyPath)
	if err != nil || !found {
		return KeyRing{}, false, err
	}
	current, err := ParsePrivateKeyPEM(pemBytes)
	if err != nil {
		return KeyRing{}, false, fmt.Errorf("load key ring: %s: %w", CurrentKeyPath, err)
	}
	if current.Alg != alg {
		return KeyRing{}, false, fmt.Errorf("load key ring: stored key is %s but %s is configured; rotate the keys to switch", current.Alg, alg)
	}
	ring = KeyRing{Current: current}
	pemBytes, found, err = Load(ctx, st, PreviousKeyPath)
	if err != nil || !found {
		return ring, true, err
	}
	if ring.Previous, err = ParsePrivateKeyPEM(pemBytes); err != nil {
		return KeyRing{}, false, fmt.Errorf("load key ring: %s: %w", PreviousKeyPath, err)
	}
	return ring, true, nil
}

// CreateKeyRing stores k as the current key unless storage holds one
// already (another instance sharing it was first), and returns the ring
// storage holds afterwards: every instance ends up signing with one key.
func CreateKeyRing(ctx context.Context, st Storage, k Key) (KeyRing, error) {
	pemBytes, err := k.MarshalPEM()
	if err != nil {
		return KeyRing{}, fmt.Errorf("load key ring: %w", err)
	}
	if _, err := LoadOrCreate(ctx, st, CurrentKeyPath, func() ([]byte, error) { return pemBytes, nil }); err != nil {
		return KeyRing{}, fmt.Errorf("load key ring: %w", err)
	}
	ring, found, err := ReadKeyRing(ctx, st, k.Alg)
	if err != nil {
		return KeyRing{}, err
	}
	if !found {
		return KeyRing{}, fmt.Errorf("load key ring: %s vanished after it was stored", CurrentKeyPath)
	}
	return ring, nil
}

// Load returns the value at key and whether it exists, writing nothing.
// Existence, not the Load error, decides (see LoadOrCreate).
func Load(ctx context.Context, st Storage, key string) (v []byte, found bool, err error) {
	if v, err := st.Load(ctx, key); err == nil {
		return v, true, nil
	}
	if !st.Exists(ctx, key) {
		return nil, false, nil
	}
	v, err = st.Load(ctx, key)
	if err != nil {
		return nil, false, fmt.Errorf("load %s: %w", key, err)
	}
	return v, true, nil
}

// RotatedAtPath records when the keys were last rotated (RFC 3339), so a
// second rotation that would retire a key still signing live tokens can
// be refused.
const RotatedAtPath = "otpgate/keys/rotated_at"

// RotatedRecentlyError refuses a rotation less than the minimum interval
// after the last one: the key it would retire may still have signed
// access tokens that have not expired.
type RotatedRecentlyError struct {
	Last, Next time.Time // the last rotation, and the earliest safe next one
}

func (e *RotatedRecentlyError) Error() string {
	return fmt.Sprintf("the keys were rotated at %s; rotating again before %s would retire the key that signed tokens still in use",
		e.Last.UTC().Format(time.RFC3339), e.Next.UTC().Format(time.RFC3339))
}

// RotateKeyRing makes a new current key and keeps the old one as previous,
// so tokens it signed stay valid for the rest of their short life. It holds
// the same lock as LoadOrCreate on the current key, so a concurrent first
// start cannot overwrite the new key. Running instances pick the new key up
// when they next load the ring (a Caddy reload).
//
// A rotation less than minInterval (the access token lifetime) after the
// last recorded one is refused with a *RotatedRecentlyError; minInterval
// 0 skips the check (an operator's --force). The time is recorded at now.
func RotateKeyRing(ctx context.Context, st Storage, alg string, now time.Time, minInterval time.Duration) error {
	if alg == "" {
		alg = AlgES256
	}
	next, err := generatePEM(alg)()
	if err != nil {
		return fmt.Errorf("rotate keys: %w", err)
	}
	if err := st.Lock(ctx, CurrentKeyPath); err != nil {
		return fmt.Errorf("rotate keys: lock: %w", err)
	}
	defer unlock(ctx, st, CurrentKeyPath)
	if minInterval > 0 {
		raw, found, err := Load(ctx, st, RotatedAtPath)
		if err != nil {
			return fmt.Errorf("rotate keys: %w", err)
		}
		if found {
			last, err := time.Parse(time.RFC3339Nano, string(raw))
			if err != nil {
				return fmt.Errorf("rotate keys: %s: %w", RotatedAtPath, err)
			}
			if now.Before(last.Add(minInterval)) {
				return &RotatedRecentlyError{Last: last, Next: last.Add(minInterval)}
			}
		}
	}
	if st.Exists(ctx, CurrentKeyPath) {
		old, err := st.Load(ctx, CurrentKeyPath)
		if err != nil {
			return fmt.Errorf("rotate keys: load %s: %w", CurrentKeyPath, err)
		}
		// Previous is written first: a crash between the two writes leaves
		// both paths holding the old key, which still verifies every token.
		if err := st.Store(ctx, PreviousKeyPath, old); err != nil {
			return fmt.Errorf("rotate keys: store %s: %w", PreviousKeyPath, err)
		}
	}
	if err := st.Store(ctx, CurrentKeyPath, next); err != nil {
		return fmt.Errorf("rotate keys: store %s: %w", CurrentKeyPath, err)
	}
	if err := st.Store(ctx, RotatedAtPath, []byte(now.UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("rotate keys: store %s: %w", RotatedAtPath, err)
	}
	return nil
}

func generatePEM(alg string) func() ([]byte, error) {
	return func() ([]byte, error) {
		k, err := GenerateKey(alg)
		if err != nil {
			return nil, err
		}
		return k.MarshalPEM()
	}
}
