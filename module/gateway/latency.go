package gateway

import (
	"crypto/rand"
	"math/big"
	"time"
)

// typicalSendLatency is a moving average of real provider calls, with
// jitter so that the suppressed path has the same spread.
func (g *Gateway) typicalSendLatency() time.Duration {
	base := time.Duration(g.sendEWMA.Load())
	j, err := rand.Int(rand.Reader, big.NewInt(int64(base/5)+1))
	if err != nil {
		return base
	}
	return base - base/10 + time.Duration(j.Int64())
}

func (g *Gateway) observeSendLatency(d time.Duration) {
	if d <= 0 || d > time.Minute {
		return
	}
	old := g.sendEWMA.Load()
	g.sendEWMA.Store(old + (int64(d)-old)/8)
}
