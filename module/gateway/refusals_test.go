package gateway

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/store"
)

// countingStore counts the limit calls that reach the store.
type countingStore struct {
	store.Store
	hits, begins atomic.Int64
}

func (c *countingStore) Hit(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (store.Decision, error) {
	c.hits.Add(1)
	return c.Store.Hit(ctx, key, limit, window, now)
}

func (c *countingStore) BeginSend(ctx context.Context, req store.SendRequest) (store.SendResult, error) {
	c.begins.Add(1)
	return c.Store.BeginSend(ctx, req)
}

// Once the store has said an address is over its limit, the instance
// refuses it by itself until the Retry-After the store gave (counting down,
// never longer), without asking the store; then the store decides again.
// Other addresses are not affected.
func TestSend_OverLimitAddress_RefusedHereUntilRetryAfter(t *testing.T) {
	cs := &countingStore{Store: openMemory(t)}
	e := newEnv(t, cs, func(c *Config) { c.IPLimit = store.Limit{N: 2, Window: 10 * time.Minute} })
	e.send("+14155550100")
	e.send("+14155550101")
	r := e.send("+14155550102")
	wantError(t, r, 429, "over_request_rate_limit")
	if r.header.Get("Retry-After") != "600" {
		t.Fatalf("Retry-After = %q, want 600", r.header.Get("Retry-After"))
	}
	hits := cs.hits.Load()
	e.clock.Advance(9*time.Minute + 30*time.Second)
	for _, body := range []string{`{"phone":"+14155550103"}`, `{"phone":"not a phone"}`, `{"broken`} {
		r := e.do("POST", "/auth/v1/otp", body)
		wantError(t, r, 429, "over_request_rate_limit")
		if got, _ := strconv.Atoi(r.header.Get("Retry-After")); got != 30 {
			t.Fatalf("Retry-After = %q, want 30 (what is left of the store's)", r.header.Get("Retry-After"))
		}
	}
	if cs.hits.Load() != hits {
		t.Fatalf("refusals of an over-limit address reached the store %d times", cs.hits.Load()-hits)
	}
	e.setIP("198.51.100.9")
	if r := e.send("+14155550104"); r.status != 200 {
		t.Fatalf("another address: %d %s", r.status, r.raw)
	}
	e.setIP("203.0.113.7")
	e.clock.Advance(30 * time.Second)
	if r := e.send("+14155550105"); r.status != 200 {
		t.Fatalf("after the Retry-After: %d %s", r.status, r.raw)
	}
}

// The same for a phone over its limit or in its cooldown: refused here
// until the store's Retry-After, without a store call for the phone.
func TestSend_OverLimitPhone_RefusedHereUntilRetryAfter(t *testing.T) {
	cs := &countingStore{Store: openMemory(t)}
	e := newEnv(t, cs)
	e.send(alice)
	wantError(t, e.send(alice), 429, "over_sms_send_rate_limit")
	begins := cs.begins.Load()
	e.clock.Advance(20 * time.Second)
	r := e.send(alice)
	wantError(t, r, 429, "over_sms_send_rate_limit")
	if r.header.Get("Retry-After") != "10" {
		t.Fatalf("Retry-After = %q, want 10", r.header.Get("Retry-After"))
	}
	if cs.begins.Load() != begins {
		t.Fatal("a phone in its cooldown was asked about again")
	}
	e.clock.Advance(10 * time.Second)
	if r := e.send(alice); r.status != 200 {
		t.Fatalf("after the cooldown: %d %s", r.status, r.raw)
	}
}

// heldSender holds each send until released, then fails it.
type heldSender struct {
	recSender
	entered, release chan struct{}
}

func (h *heldSender) Send(ctx context.Context, m sender.Message) (sender.Result, error) {
	h.entered <- struct{}{}
	<-h.release
	return sender.Result{}, errBoom
}

// A send the provider refused gives the phone's cooldown back: a refusal
// this instance noted while that send was under way is forgotten with it.
func TestSend_ProviderRefused_LocalRefusalForgotten(t *testing.T) {
	held := &heldSender{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, openMemory(t), func(c *Config) { c.Sender = held })
	first := make(chan resp)
	go func() { first <- e.send(alice) }()
	<-held.entered
	wantError(t, e.send(alice), 429, "over_sms_send_rate_limit") // in the cooldown the first started
	close(held.release)
	wantError(t, <-first, 502, "sms_send_failed")
	go func() { <-held.entered }()
	if r := e.send(alice); r.status != 502 {
		t.Fatalf("retry after a provider refusal: %d %s, want it to reach the provider", r.status, r.raw)
	}
}

func TestRefusals_BoundedMemory(t *testing.T) {
	r := newRefusals()
	now := time.Now()
	for i := 0; i < maxRefusals+10; i++ {
		r.note(fmt.Sprint(i), now.Add(time.Minute), false, now)
	}
	if len(r.m) > maxRefusals {
		t.Fatalf("%d refusals kept, want at most %d", len(r.m), maxRefusals)
	}
	later := now.Add(2 * time.Minute)
	r.note("new", later.Add(time.Minute), false, later)
	if left, _ := r.check("new", later); left != time.Minute || len(r.m) != 1 {
		t.Fatalf("expired refusals not dropped when full: %d kept, new left %v", len(r.m), left)
	}
}
