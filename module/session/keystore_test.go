package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoadOrCreate_MissingValue_CreatedAndStored(t *testing.T) {
	st := newMemStorage()
	v, err := LoadOrCreate(context.Background(), st, "k", func() ([]byte, error) { return []byte("v1"), nil })
	if err != nil || string(v) != "v1" {
		t.Fatalf("got %q, %v", v, err)
	}
	if got, _ := st.Load(context.Background(), "k"); string(got) != "v1" {
		t.Fatalf("stored %q", got)
	}
}

func TestLoadOrCreate_ExistingValue_NotRecreated(t *testing.T) {
	st := newMemStorage()
	st.data["k"] = []byte("old")
	v, err := LoadOrCreate(context.Background(), st, "k", func() ([]byte, error) {
		t.Fatal("create called for an existing value")
		return nil, nil
	})
	if err != nil || string(v) != "old" {
		t.Fatalf("got %q, %v", v, err)
	}
}

func TestLoadOrCreate_ConcurrentCallers_GetSameValue(t *testing.T) {
	st := newMemStorage()
	const callers = 32
	var (
		creates atomic.Int32
		start   = make(chan struct{})
		wg      sync.WaitGroup
		results [callers][]byte
	)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			v, err := LoadOrCreate(context.Background(), st, "otpgate/secret", func() ([]byte, error) {
				n := creates.Add(1)
				return []byte(fmt.Sprintf("value from caller %d (create #%d)", i, n)), nil
			})
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		}()
	}
	close(start)
	wg.Wait()
	if n := creates.Load(); n != 1 {
		t.Fatalf("create ran %d times, want 1", n)
	}
	for i := range results {
		if !bytes.Equal(results[i], results[0]) {
			t.Fatalf("caller %d got %q, caller 0 got %q", i, results[i], results[0])
		}
	}
}

func TestLoadOrCreate_CreateFails_NothingStored(t *testing.T) {
	st := newMemStorage()
	boom := errors.New("boom")
	if _, err := LoadOrCreate(context.Background(), st, "k", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if st.Exists(context.Background(), "k") {
		t.Fatal("value stored after a failed create")
	}
	if err := st.Lock(context.Background(), "k"); err != nil {
		t.Fatal("lock left held:", err)
	}
}

func TestLoadOrCreate_ExistingButUnreadable_NotOverwritten(t *testing.T) {
	st := newMemStorage()
	st.data["k"] = []byte("precious")
	st.loadErr = errors.New("storage hiccup")
	_, err := LoadOrCreate(context.Background(), st, "k", func() ([]byte, error) { return []byte("new"), nil })
	if err == nil {
		t.Fatal("want an error")
	}
	if string(st.data["k"]) != "precious" || st.stores != 0 {
		t.Fatal("existing value overwritten")
	}
}

func TestLoadOrCreate_LockFails_Error(t *testing.T) {
	st := newMemStorage()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = st.Lock(context.Background(), "k") // held by "another instance"
	if _, err := LoadOrCreate(ctx, st, "k", func() ([]byte, error) { return []byte("v"), nil }); err == nil {
		t.Fatal("want an error when the lock cannot be taken")
	}
}

func TestLoadKeyRing_FirstStart_GeneratesOneSharedKey(t *testing.T) {
	st := newMemStorage()
	a, err := LoadKeyRing(context.Background(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadKeyRing(context.Background(), st, AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if a.Current.Alg != AlgES256 || a.Current.Kid != b.Current.Kid {
		t.Fatalf("instances disagree: %v vs %v", a.Current, b.Current)
	}
	if a.Previous.Kid != "" {
		t.Fatal("previous key on first start")
	}
	if !st.Exists(context.Background(), CurrentKeyPath) {
		t.Fatal("key not stored at", CurrentKeyPath)
	}
}

func TestLoadKeyRing_ConcurrentInstances_ShareKey(t *testing.T) {
	st := newMemStorage()
	const instances = 8
	var (
		wg   sync.WaitGroup
		kids [instances]string
	)
	for i := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := LoadKeyRing(context.Background(), st, AlgEdDSA)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = r.Current.Kid
		}()
	}
	wg.Wait()
	for i := range kids {
		if kids[i] != kids[0] {
			t.Fatalf("instance %d has kid %q, instance 0 has %q", i, kids[i], kids[0])
		}
	}
}

func TestLoadKeyRing_AlgorithmChanged_Error(t *testing.T) {
	st := newMemStorage()
	if _, err := LoadKeyRing(context.Background(), st, AlgES256); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyRing(context.Background(), st, AlgEdDSA); err == nil {
		t.Fatal("ES256 key silently used for EdDSA config")
	}
}

func TestLoadKeyRing_RefusesHS256AndUnknown(t *testing.T) {
	for _, alg := range []string{AlgHS256, "ES512"} {
		if _, err := LoadKeyRing(context.Background(), newMemStorage(), alg); err == nil {
			t.Errorf("%s accepted", alg)
		}
	}
}

func TestLoadKeyRing_CorruptStoredKey_ErrorAndKept(t *testing.T) {
	st := newMemStorage()
	st.data[CurrentKeyPath] = []byte("garbage")
	if _, err := LoadKeyRing(context.Background(), st, AlgES256); err == nil {
		t.Fatal("corrupt key accepted")
	}
	if string(st.data[CurrentKeyPath]) != "garbage" {
		t.Fatal("corrupt key replaced: other instances would lose their sessions")
	}
}

func TestRotateKeyRing_OldTokensValidUntilSecondRotation(t *testing.T) {
	ctx := context.Background()
	st := newMemStorage()
	ring1, err := LoadKeyRing(ctx, st, AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := NewTokens(ring1, testIssuer, testAudience).Sign(testClaims(t0))
	if err != nil {
		t.Fatal(err)
	}

	if err := RotateKeyRing(ctx, st, AlgES256, t0, 0); err != nil {
		t.Fatal(err)
	}
	ring2, err := LoadKeyRing(ctx, st, AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if ring2.Previous.Kid != ring1.Current.Kid || ring2.Current.Kid == ring1.Current.Kid {
		t.Fatalf("rotation: ring %v/%v after %v", ring2.Current, ring2.Previous, ring1.Current)
	}
	if _, err := NewTokens(ring2, testIssuer, testAudience).Verify(tok, t0); err != nil {
		t.Fatal("token of the previous key refused:", err)
	}

	if err := RotateKeyRing(ctx, st, AlgES256, t0, 0); err != nil {
		t.Fatal(err)
	}
	ring3, err := LoadKeyRing(ctx, st, AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTokens(ring3, testIssuer, testAudience).Verify(tok, t0); !errors.Is(err, ErrInvalid) {
		t.Fatal("token of a retired key accepted:", err)
	}
}

func TestRotateKeyRing_SwitchesAlgorithm(t *testing.T) {
	ctx := context.Background()
	st := newMemStorage()
	if _, err := LoadKeyRing(ctx, st, AlgES256); err != nil {
		t.Fatal(err)
	}
	if err := RotateKeyRing(ctx, st, AlgEdDSA, t0, 0); err != nil {
		t.Fatal(err)
	}
	ring, err := LoadKeyRing(ctx, st, AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	if ring.Current.Alg != AlgEdDSA || ring.Previous.Alg != AlgES256 {
		t.Fatalf("ring = %v / %v", ring.Current, ring.Previous)
	}
}

// Reading the ring, as provisioning (and so `caddy validate`) does,
// writes nothing, whether or not a key exists yet.
func TestReadKeyRing_WritesNothing(t *testing.T) {
	ctx := context.Background()
	st := newMemStorage()
	if _, found, err := ReadKeyRing(ctx, st, AlgES256); err != nil || found {
		t.Fatalf("empty storage: found %v, err %v", found, err)
	}
	if st.stores != 0 {
		t.Fatalf("reading an empty storage stored %d values", st.stores)
	}
	want, err := LoadKeyRing(ctx, st, AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	before := st.stores
	got, found, err := ReadKeyRing(ctx, st, AlgES256)
	if err != nil || !found || got.Current.Kid != want.Current.Kid {
		t.Fatalf("ring %v found %v err %v, want %v", got.Current, found, err, want.Current)
	}
	if st.stores != before {
		t.Fatal("reading an existing ring stored something")
	}
}

// Two instances that each generated a key before either stored it end up
// with the first one stored.
func TestCreateKeyRing_SecondCandidateLoses(t *testing.T) {
	ctx := context.Background()
	st := newMemStorage()
	a, _ := GenerateKey(AlgES256)
	b, _ := GenerateKey(AlgES256)
	ra, err := CreateKeyRing(ctx, st, a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := CreateKeyRing(ctx, st, b)
	if err != nil {
		t.Fatal(err)
	}
	if ra.Current.Kid != a.Kid || rb.Current.Kid != a.Kid {
		t.Fatalf("rings %s and %s, want both %s", ra.Current, rb.Current, a)
	}
}

// A second rotation within the minimum interval would retire the key that
// signed live tokens: refused, and nothing changes; after the interval,
// or with the check off (--force), it goes ahead.
func TestRotateKeyRing_SecondRotationWithinInterval_Refused(t *testing.T) {
	ctx := context.Background()
	st := newMemStorage()
	if err := RotateKeyRing(ctx, st, AlgES256, t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	ring1, _ := LoadKeyRing(ctx, st, AlgES256)
	err := RotateKeyRing(ctx, st, AlgES256, t0.Add(59*time.Minute), time.Hour)
	var recent *RotatedRecentlyError
	if !errors.As(err, &recent) || !recent.Last.Equal(t0) || !recent.Next.Equal(t0.Add(time.Hour)) {
		t.Fatalf("second rotation within the hour: %v", err)
	}
	if ring, _ := LoadKeyRing(ctx, st, AlgES256); ring.Current.Kid != ring1.Current.Kid {
		t.Fatal("a refused rotation changed the key")
	}
	if err := RotateKeyRing(ctx, st, AlgES256, t0.Add(time.Hour), time.Hour); err != nil {
		t.Fatalf("rotation after the interval: %v", err)
	}
	if err := RotateKeyRing(ctx, st, AlgES256, t0.Add(time.Hour+time.Second), 0); err != nil {
		t.Fatalf("forced rotation: %v", err)
	}
}
