package storetest

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of FirstSeen, Forget and Claim.

var nonceTests = []test{
	{"FirstSeen_SecondTimeFalse", testFirstSeen},
	{"FirstSeen_KeysIndependent", testFirstSeenKeys},
	{"Forget_SeenAgainAsFirst", testForget},
	{"Claim_FirstValueWins", testClaim},
}

func testFirstSeen(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, want := range []bool{true, false, false} {
		got, err := s.FirstSeen(ctx, "nonce:abc", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("FirstSeen call %d = %v, want %v", i+1, got, want)
		}
	}
}

func testFirstSeenKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, key := range []string{"nonce:a", "nonce:b"} {
		if got, err := s.FirstSeen(ctx, key, time.Hour); err != nil || !got {
			t.Fatalf("FirstSeen(%s) = %v, %v; want true", key, got, err)
		}
	}
}

func testForget(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got, err := s.FirstSeen(ctx, "nonce:f", time.Hour); err != nil || !got {
		t.Fatalf("first: %v %v", got, err)
	}
	if err := s.Forget(ctx, "nonce:f"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FirstSeen(ctx, "nonce:f", time.Hour); err != nil || !got {
		t.Fatalf("after Forget: %v %v, want first again", got, err)
	}
	if got, _ := s.FirstSeen(ctx, "nonce:f", time.Hour); got {
		t.Fatal("seen twice after Forget is not first")
	}
	if err := s.Forget(ctx, "nonce:never"); err != nil {
		t.Fatalf("forgetting an unknown key: %v", err)
	}
}

func testClaim(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got, err := s.Claim(ctx, "secret", "fp-a"); err != nil || got != "fp-a" {
		t.Fatalf("first claim: %q %v", got, err)
	}
	if got, err := s.Claim(ctx, "secret", "fp-b"); err != nil || got != "fp-a" {
		t.Fatalf("second claim: %q %v, want the first value", got, err)
	}
	if got, err := s.Claim(ctx, "other", "fp-b"); err != nil || got != "fp-b" {
		t.Fatalf("another key: %q %v", got, err)
	}
}
