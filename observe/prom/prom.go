package prom

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// maxReasons bounds the distinct values of the free-text labels (reason,
// use): an application could put its own public texts there. Past it a
// value is counted as "other".
const maxReasons = 32

// Observer is a [wsguard.Observer] that updates Prometheus metrics. Create
// it with [New] and pass it to wsguard.WithObserver. One Observer may
// serve several servers: their counts add up.
type Observer struct {
	open       prometheus.Gauge
	handshakes *prometheus.CounterVec
	accepted   prometheus.Counter
	closed     *prometheus.CounterVec
	msgsIn     prometheus.Counter
	msgsOut    prometheus.Counter
	sizeIn     prometheus.Observer
	sizeOut    prometheus.Observer
	latency    prometheus.Observer
	queueLen   prometheus.Observer
	limited    *prometheus.CounterVec
	authFails  *prometheus.CounterVec
	storeErrs  *prometheus.CounterVec

	mu      sync.Mutex
	reasons map[string]struct{} // label values seen, for the bound
}

// New returns an Observer whose metrics are registered with reg (use
// prometheus.NewRegistry() and serve it with promhttp.HandlerFor, on a
// listener of its own). It fails when reg is nil or already holds them.
func New(reg prometheus.Registerer) (*Observer, error) {
	if reg == nil {
		return nil, errors.New("prom: New(nil): needs a prometheus.Registerer")
	}
	const ns = "wsguard"
	sizes := prometheus.ExponentialBuckets(64, 4, 8) // 64 B .. 1 MiB
	o := &Observer{
		open: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "connections_open",
			Help: "Open WebSocket connections."}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "handshakes_total",
			Help: "Handshakes by result and, when rejected, errlog code."}, []string{"result", "code"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "connections_closed_total",
			Help: "Closed connections by errlog code and close status."}, []string{"code", "status"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "limited_total",
			Help: "Handshakes refused and connections closed by a limit."}, []string{"limit"}),
		authFails: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "auth_failures_total",
			Help: "Refused tokens by public reason."}, []string{"reason"}),
		storeErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "store_errors_total",
			Help: "Shared store failures by use."}, []string{"use"}),
		reasons: make(map[string]struct{}),
	}
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_total",
		Help: "Messages by direction."}, []string{"direction"})
	size := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "message_size_bytes",
		Help: "Message sizes by direction.", Buckets: sizes}, []string{"direction"})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "handler_duration_seconds",
		Help: "Time spent handling a message, middleware included.", Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10)})
	queueLen := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "send_queue_length",
		Help: "Messages in a connection's send queue when one is queued, that one included.", Buckets: prometheus.ExponentialBuckets(1, 4, 6)})
	for _, c := range []prometheus.Collector{o.open, o.handshakes, o.closed, msgs, size, latency, queueLen, o.limited, o.authFails, o.storeErrs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Resolved once: the per-message path then allocates nothing.
	o.accepted = o.handshakes.WithLabelValues("accepted", "")
	o.msgsIn, o.msgsOut = msgs.WithLabelValues("in"), msgs.WithLabelValues("out")
	o.sizeIn, o.sizeOut = size.WithLabelValues("in"), size.WithLabelValues("out")
	o.latency, o.queueLen = latency, queueLen
	return o, nil
}

// Observe implements [wsguard.Observer].
func (o *Observer) Observe(_ context.Context, e wsguard.Event) {
	switch e.Kind {
	case wsguard.EventMessageIn:
		o.msgsIn.Inc()
		o.sizeIn.Observe(float64(e.Size))
		o.latency.Observe(e.Duration.Seconds())
	case wsguard.EventMessageOut:
		o.msgsOut.Inc()
		o.sizeOut.Observe(float64(e.Size))
	case wsguard.EventSendQueued:
		o.queueLen.Observe(float64(e.Size))
	case wsguard.EventHandshakeAccepted:
		o.accepted.Inc()
	case wsguard.EventHandshakeRejected:
		o.handshakes.WithLabelValues("rejected", e.Code.String()).Inc()
	case wsguard.EventConnOpened:
		o.open.Inc()
	case wsguard.EventConnClosed:
		o.open.Dec()
		code := "app"
		if e.Code != 0 {
			code = e.Code.String()
		}
		o.closed.WithLabelValues(code, closeStatus(e.Status)).Inc()
	case wsguard.EventLimited:
		o.limited.WithLabelValues(o.bounded(e.Reason)).Inc()
	case wsguard.EventAuthFailed:
		o.authFails.WithLabelValues(o.bounded(e.Reason)).Inc()
	case wsguard.EventStoreError:
		o.storeErrs.WithLabelValues(o.bounded(e.Reason)).Inc()
	}
}

// bounded returns s, or "other" once maxReasons distinct values were seen.
func (o *Observer) bounded(s string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.reasons[s]; ok {
		return s
	}
	if len(o.reasons) >= maxReasons {
		return "other"
	}
	o.reasons[s] = struct{}{}
	return s
}

// closeStatus returns the label of a close status: the status when the
// protocol or this module defines it, else "other", because a peer may
// send any number in 1000-4999.
func closeStatus(s int) string {
	switch s {
	case errlog.CloseNormal, errlog.CloseGoingAway, errlog.CloseProtocolError,
		errlog.CloseUnsupportedData, 1005, 1006, errlog.CloseInvalidPayload,
		errlog.ClosePolicyViolation, errlog.CloseMessageTooBig, errlog.CloseInternalError,
		errlog.CloseTryAgainLater, errlog.CloseUnauthenticated, errlog.ClosePermissionDenied,
		errlog.CloseDeadlineExceeded, errlog.CloseResourceExhausted:
		return strconv.Itoa(s)
	}
	return "other"
}
