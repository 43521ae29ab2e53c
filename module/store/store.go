// Package store defines where otpgate keeps its state: challenges, send
// limits, users, sessions, refresh tokens, opt-outs and the revocation feed.
//
// Two implementations exist: memstore (one process, the default) and
// redisstore (any number of gateways sharing Redis). Both must pass the
// conformance suite in storetest; it is the definition of the semantics
// documented here.
//
// All per-person state is addressed by a UserKey: a pseudonymous, stable tag
// derived from the phone number by the caller (an HMAC under the server
// secret). It keeps phone numbers out of key names and lets the Redis store
// put everything one person owns in one cluster hash slot.
package store

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnavailable wraps every failure to reach the backing store. Callers map
// it to 503 store_unavailable and fail closed.
var ErrUnavailable = errors.New("store unavailable")

// ErrInvalid wraps the refusal of a request that no correct caller makes
// (an empty ID, a non-positive TTL); both stores check requests the same way
// so that such a bug fails loudly instead of storing a record that never
// expires.
var ErrInvalid = errors.New("invalid store request")

// UserKey is the pseudonymous tag of one phone number, e.g. 22 base64url
// characters. It never contains the phone itself.
type UserKey string

// Store is the state backend: one interface per concern (each in its own
// file, with its types), and the store's own health and lifetime.
type Store interface {
	Limiter
	Challenges
	Sessions
	Feed
	Users
	Moves
	Nonces

	// Ping checks that the store answers.
	Ping(ctx context.Context) error

	// Close releases the store's resources.
	Close() error
}

func invalid(what string) error {
	return fmt.Errorf("%w: %s", ErrInvalid, what)
}
