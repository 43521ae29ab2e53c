package gateway

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/phone"
)

// What a provider's callbacks (served by the sender's handlers, mounted
// as Site.Callbacks) report to the gateway: replay-proof nonces, delivery
// reports and opt-outs. The gateway never calls a sender's handlers.

// nonceTTL: Plivo signs each callback with a fresh nonce; remembering them
// for a day refuses replays of any captured request in that time.
const nonceTTL = 24 * time.Hour

// FirstSeenNonce reports whether a callback nonce is new.
func (g *Gateway) FirstSeenNonce(ctx context.Context, nonce string) (bool, error) {
	return g.cfg.Store.FirstSeen(ctx, "plivo-nonce:"+nonce, nonceTTL)
}

// ForgetNonce lets a callback whose processing failed be delivered again.
func (g *Gateway) ForgetNonce(ctx context.Context, nonce string) {
	if err := g.cfg.Store.Forget(ctx, "plivo-nonce:"+nonce); err != nil {
		g.log.Warn("forget callback nonce", zap.Error(err))
	}
}

// SetOptOut records a STOP (out) or START from the owner of a number. The
// number comes from Plivo, which may send it without '+'.
func (g *Gateway) SetOptOut(ctx context.Context, from string, out bool) error {
	if from != "" && from[0] != '+' {
		from = "+" + from
	}
	num, err := phone.Parse(from)
	if err != nil {
		return fmt.Errorf("opt-out: %w", err)
	}
	if err := g.cfg.Store.SetOptOut(ctx, g.userKey(num.E164), out, g.now()); err != nil {
		return err
	}
	g.logFor(ctx).Info("opt-out", zap.String("phone", num.Masked()), zap.String("country", num.Region), zap.Bool("opted_out", out))
	return nil
}

// DeliveryReport counts a provider delivery status reported by the
// request of ctx.
func (g *Gateway) DeliveryReport(ctx context.Context, status string) {
	g.cfg.Metrics.deliveryReport(serverOf(ctx), status)
}
