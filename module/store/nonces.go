package store

import (
	"context"
	"time"
)

// Nonces remembers keys seen once (callback nonces) and values claimed
// once.
type Nonces interface {
	// FirstSeen returns true the first time key is seen within ttl (SET NX);
	// used to refuse replayed callback nonces.
	FirstSeen(ctx context.Context, key string, ttl time.Duration) (bool, error)

	// Forget drops key from FirstSeen's memory, so a callback whose
	// processing failed can be delivered again with the same nonce.
	Forget(ctx context.Context, key string) error

	// Claim stores value under key unless one is there already, and
	// returns what the key holds afterwards. Instances use it to check that
	// they share one server secret.
	Claim(ctx context.Context, key, value string) (string, error)
}
