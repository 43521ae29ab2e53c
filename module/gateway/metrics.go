package gateway

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are otpgate's Prometheus collectors. Every series carries the
// `server` label of Caddy's own HTTP metrics (the name of the Caddy server
// the request came to; "" outside Caddy), except the feed's health, which
// belongs to the process.
//
// Counters must not restart while the process lives: Caddy makes a new
// registry for each config it loads, so the Caddy adapter keeps one
// Metrics for the process and registers it with each config's registry.
type Metrics struct {
	sends     *prometheus.CounterVec
	verifies  *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	provErr   *prometheus.CounterVec
	gate      *prometheus.CounterVec
	feed      prometheus.Gauge
	delivered *prometheus.CounterVec

	// allowed caches the most common series, one per server: a label
	// lookup would otherwise cost a hash per gated request. The map is
	// replaced, never changed, so reading it takes no lock.
	allowed   atomic.Pointer[map[string]prometheus.Counter]
	allowedMu sync.Mutex
}

// NewMetrics creates the collectors and registers them with reg (if not
// nil; see Register).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "otpgate"
	m := &Metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "sends_total",
			Help: "Code sends by channel, country and outcome."}, []string{"server", "channel", "country", "outcome"}),
		verifies: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "verifies_total",
			Help: "Code verifications by outcome."}, []string{"server", "outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "refusals_total",
			Help: "Refused auth requests by error code."}, []string{"server", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "provider_latency_seconds",
			Help: "Latency of SMS/WhatsApp provider calls.", Buckets: prometheus.ExponentialBuckets(0.025, 2, 10)}, []string{"server", "channel"}),
		provErr: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "provider_errors_total",
			Help: "Failed provider calls by channel."}, []string{"server", "channel"}),
		gate: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "gate_decisions_total",
			Help: "Gate decisions for upstream requests."}, []string{"server", "decision"}),
		feed: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "revocation_feed_healthy",
			Help: "1 while the revocation feed is connected."}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "delivery_reports_total",
			Help: "Provider delivery reports by status."}, []string{"server", "status"}),
	}
	if reg != nil {
		_ = m.Register(reg)
	}
	return m
}

// Register adds the collectors to reg. Registering them again with the
// same registry is not an error.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.sends, m.verifies, m.refusals, m.latency, m.provErr, m.gate, m.feed, m.delivered} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) && are.ExistingCollector == c {
				continue
			}
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

func (m *Metrics) send(server, channel, country, outcome string) {
	m.sends.WithLabelValues(server, channel, country, outcome).Inc()
}

func (m *Metrics) verify(server, outcome string) { m.verifies.WithLabelValues(server, outcome).Inc() }

// refusal counts a refused auth request under its error code (the
// error_code of the answer).
func (m *Metrics) refusal(server, code string) { m.refusals.WithLabelValues(server, code).Inc() }

func (m *Metrics) providerLatency(server, channel string, d time.Duration, err error) {
	m.latency.WithLabelValues(server, channel).Observe(d.Seconds())
	if err != nil {
		m.provErr.WithLabelValues(server, channel).Inc()
	}
}

func (m *Metrics) gateDecision(server, d string) {
	if d == "allowed" {
		m.allowedCounter(server).Inc()
		return
	}
	m.gate.WithLabelValues(server, d).Inc()
}

func (m *Metrics) allowedCounter(server string) prometheus.Counter {
	if p := m.allowed.Load(); p != nil {
		if c, ok := (*p)[server]; ok {
			return c
		}
	}
	m.allowedMu.Lock()
	defer m.allowedMu.Unlock()
	next := map[string]prometheus.Counter{}
	if p := m.allowed.Load(); p != nil {
		maps.Copy(next, *p)
	}
	c, ok := next[server]
	if !ok {
		c = m.gate.WithLabelValues(server, "allowed")
		next[server] = c
		m.allowed.Store(&next)
	}
	return c
}

func (m *Metrics) deliveryReport(server, status string) {
	m.delivered.WithLabelValues(server, status).Inc()
}

func (m *Metrics) feedHealthy(ok bool) {
	if ok {
		m.feed.Set(1)
	} else {
		m.feed.Set(0)
	}
}

func (g *Gateway) metrics() *Metrics { return g.cfg.Metrics }
