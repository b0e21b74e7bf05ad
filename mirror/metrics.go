package mirror

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the shim's Prometheus collectors, on a registry of their own.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	failures *prometheus.CounterVec
	renewals prometheus.Counter
	token    *prometheus.GaugeVec
	bytes    prometheus.Counter
	handler  http.Handler
}

// newMetrics returns the shim's collectors, registered with the byte
// accounting acct and Go's and the process's collectors on a registry of
// their own that handler serves.
func newMetrics(acct prometheus.Collector) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(mirrorOpts("requests_total",
			"Registry requests by upstream registry, kind (ping, manifest, blob) and HTTP status. Upstream is \"none\" for requests refused before routing.")),
			[]string{"upstream", "kind", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ecr_ptc", Subsystem: "mirror", Name: "request_duration_seconds",
			Help:    "Time to answer a registry request (to the end of the body for streamed blobs).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts(mirrorOpts("failures_total",
			"Requests refused or failed, by reason (unmapped, bad_request, method, timeout, unreachable, upstream_5xx, throttled, token, body_cut, ...).")),
			[]string{"reason"}),
		renewals: prometheus.NewCounter(prometheus.CounterOpts(mirrorOpts("token_renewals_total",
			"Times the ECR token in use changed for a new one."))),
		token: prometheus.NewGaugeVec(prometheus.GaugeOpts(mirrorOpts("token_state",
			"1 for the state of the shim's ECR token, 0 for the others: valid (pulls are served), fetching (the first fetch is under way), timeout (the ECR API did not answer in time), denied (IAM refused GetAuthorizationToken), no_credentials (no AWS credentials), error (any other failure).")),
			[]string{"state"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts(mirrorOpts("streamed_bytes_total",
			"Response body bytes the shim streamed to clients (manifests, and blobs when following redirects)."))),
	}
	reg.MustRegister(m.requests, m.latency, m.failures, m.renewals, m.token, m.bytes, acct,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

// mirrorOpts names a collector of the shim: ecr_ptc_mirror_<name>.
func mirrorOpts(name, help string) prometheus.Opts {
	return prometheus.Opts{Namespace: "ecr_ptc", Subsystem: "mirror", Name: name, Help: help}
}

func (m *metrics) observe(upstream, kind string, status int, d time.Duration, reason string) {
	m.requests.WithLabelValues(upstream, kind, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(kind).Observe(d.Seconds())
	if reason != "" {
		m.failures.WithLabelValues(reason).Inc()
	}
}

// setTokenState marks state as the token's current state.
func (m *metrics) setTokenState(state string) {
	for _, st := range tokenStates {
		v := 0.0
		if st == state {
			v = 1
		}
		m.token.WithLabelValues(st).Set(v)
	}
}
