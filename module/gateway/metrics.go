package gateway

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are otpgate's Prometheus collectors. A nil registerer keeps them
// unregistered (tests, or when Caddy metrics are off).
type Metrics struct {
	sends     *prometheus.CounterVec
	verifies  *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	provErr   *prometheus.CounterVec
	gate      *prometheus.CounterVec
	feed      prometheus.Gauge
	Delivered *prometheus.CounterVec

	allowedOnce sync.Once
	allowed     prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg (if not
// nil). Registering twice (a config reload) reuses the existing ones.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "otpgate"
	m := &Metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "sends_total",
			Help: "Code sends by channel, country and outcome."}, []string{"channel", "country", "outcome"}),
		verifies: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "verifies_total",
			Help: "Code verifications by outcome."}, []string{"outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "refusals_total",
			Help: "Refused auth requests by error code."}, []string{"reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "provider_latency_seconds",
			Help: "Latency of SMS/WhatsApp provider calls.", Buckets: prometheus.ExponentialBuckets(0.025, 2, 10)}, []string{"channel"}),
		provErr: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "provider_errors_total",
			Help: "Failed provider calls by channel."}, []string{"channel"}),
		gate: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "gate_decisions_total",
			Help: "Gate decisions for upstream requests."}, []string{"decision"}),
		feed: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "revocation_feed_healthy",
			Help: "1 while the revocation feed is connected."}),
		Delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "delivery_reports_total",
			Help: "Provider delivery reports by status."}, []string{"status"}),
	}
	if reg != nil {
		m.sends = register(reg, m.sends)
		m.verifies = register(reg, m.verifies)
		m.refusals = register(reg, m.refusals)
		m.latency = register(reg, m.latency)
		m.provErr = register(reg, m.provErr)
		m.gate = register(reg, m.gate)
		m.feed = register(reg, m.feed)
		m.Delivered = register(reg, m.Delivered)
	}
	return m
}

// register adds c to reg; after a config reload the collectors already
// exist and the registered ones are kept, so counts carry on.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

func (m *Metrics) send(channel, country, outcome string) {
	m.sends.WithLabelValues(channel, country, outcome).Inc()
}

func (m *Metrics) verify(outcome string) { m.verifies.WithLabelValues(outcome).Inc() }

func (m *Metrics) refusal(reason string) { m.refusals.WithLabelValues(reason).Inc() }

func (m *Metrics) providerLatency(channel string, d time.Duration, err error) {
	m.latency.WithLabelValues(channel).Observe(d.Seconds())
	if err != nil {
		m.provErr.WithLabelValues(channel).Inc()
	}
}

// gateDecision counts a gate decision. The common one is resolved once:
// the label lookup would otherwise cost a hash per gated request.
func (m *Metrics) gateDecision(d string) {
	if d == "allowed" {
		m.allowedOnce.Do(func() { m.allowed = m.gate.WithLabelValues("allowed") })
		m.allowed.Inc()
		return
	}
	m.gate.WithLabelValues(d).Inc()
}

func (m *Metrics) feedHealthy(ok bool) {
	if ok {
		m.feed.Set(1)
	} else {
		m.feed.Set(0)
	}
}
