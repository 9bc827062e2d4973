package wsguard

import (
	"container/list"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/wsguard/kit/errlog"
)

// Defaults of [NewHandshakeLimit]: a browser reconnecting after a network
// blip needs a few handshakes; a script hammering the endpoint needs many.
const (
	DefaultHandshakeRate  = 10 // handshakes per second per client
	DefaultHandshakeBurst = 20
)

// maxTrackedClients bounds the memory of a HandshakeLimit (a few hundred
// bytes per client, some tens of MB in all) whatever the number of
// addresses a flood comes from.
const maxTrackedClients = 100_000

// maxRetryAfter caps the delay a client is told to wait, so that a very low
// rate cannot overflow the conversion to time.Duration.
const maxRetryAfter = 24 * time.Hour

// HandshakeLimit limits the rate of handshakes per client with a token
// bucket (golang.org/x/time/rate) each, so that a client cannot make the
// server pay for upgrades, and for the authentication behind them, in a
// tight loop.
//
// A client is its IP address ([ClientIP]; put [RealIP] in front when there
// are proxies), and for IPv6 its /64 prefix: that is what one subscriber is
// given, and keying single IPv6 addresses would let a client dodge the limit
// by rotating through its own prefix. Requests whose client IP is unknown
// share one bucket.
//
// Memory is bounded: at most 100,000 clients are tracked. A bucket that has
// refilled is dropped, as it is the same as a new one. When the table is
// still full, the client seen least recently is dropped; it has had the
// longest to refill, so forgetting it gives back the fewest tokens.
type HandshakeLimit struct {
	limit      rate.Limit
	burst      int
	maxClients int
	cfg        guardConfig
	store      HandshakeStore // of a Server's WithHandshakeStore; nil: none

	mu      sync.Mutex
	clients map[netip.Addr]*list.Element // of *handshakeBucket
	lru     list.List                    // most recently seen at the front
}

type handshakeBucket struct {
	key netip.Addr
	lim *rate.Limiter
}

// NewHandshakeLimit returns a limit of perSecond handshakes per second per
// client with the given burst ([DefaultHandshakeRate] and
// [DefaultHandshakeBurst] are the server's). The rate must be a finite
// number > 0 and the burst >= 1: NewHandshakeLimit panics on a zero. A
// client over the limit is refused as errlog.ResourceExhausted (HTTP 429)
// with Retry-After set to the time until it has a token again.
func NewHandshakeLimit(perSecond float64, burst int, opts ...GuardOption) *HandshakeLimit {
	mustPositiveRate(rateCall("NewHandshakeLimit", perSecond, burst), perSecond, burst)
	return &HandshakeLimit{
		limit:      rate.Limit(perSecond),
		burst:      burst,
		maxClients: maxTrackedClients,
		cfg:        newGuardConfig(opts),
		clients:    make(map[netip.Addr]*list.Element),
	}
}

// Check takes a token for the client of r and returns nil, or an error
// carrying the delay ([RetryAfter]) when the client has none left. Unlike
// the other guards' Check, it counts the request: call it once per
// handshake.
func (l *HandshakeLimit) Check(r *http.Request) error {
	key := clientKey(ClientIP(r))
	now := l.cfg.now()

	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropRefilled(now, key)
	b := l.bucket(key)
	if b.lim.AllowN(now, 1) {
		return nil
	}
	wait := (1 - b.lim.TokensAt(now)) / float64(l.limit)
	d := maxRetryAfter
	if wait < maxRetryAfter.Seconds() {
		d = time.Duration(math.Ceil(wait * float64(time.Second)))
	}
	return retryError(errlog.ResourceExhausted, d,
		fmt.Errorf("client %s over %g handshakes/s (burst %d)", key, float64(l.limit), l.burst))
}

// Handler rejects requests that [HandshakeLimit.Check] refuses, with
// [Reject], and reports them to the request's observer as an
// [EventLimited] ([LimitHandshakeRate]).
func (l *HandshakeLimit) Handler(h http.Handler) http.Handler {
	return admitHandler(l.admit, h)
}

// admit is the Handler's decision, which a Server makes in line: false
// when the request was refused. With a shared store the request also
// takes a token there, after the local one.
func (l *HandshakeLimit) admit(w http.ResponseWriter, r *http.Request) bool {
	err := l.Check(r)
	if err == nil && l.store != nil {
		err = l.checkShared(r)
	}
	if err != nil {
		refuse(w, r, LimitHandshakeRate, err)
		return false
	}
	return true
}

// bucket returns the bucket of key, moved to the front, making room for it
// when it is new. l.mu is held.
func (l *HandshakeLimit) bucket(key netip.Addr) *handshakeBucket {
	if e, ok := l.clients[key]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*handshakeBucket)
	}
	if l.lru.Len() >= l.maxClients {
		l.remove(l.lru.Back())
	}
	b := &handshakeBucket{key: key, lim: rate.NewLimiter(l.limit, l.burst)}
	l.clients[key] = l.lru.PushFront(b)
	return b
}

// dropRefilled forgets the least recently seen clients whose buckets are
// full again, so that the table shrinks when a flood stops. Each client is
// dropped once, so the cost per call is constant on average. It stops at
// the bucket of key, the client being checked, which would only be made
// again at once. l.mu is held.
func (l *HandshakeLimit) dropRefilled(now time.Time, key netip.Addr) {
	for e := l.lru.Back(); e != nil; e = l.lru.Back() {
		b := e.Value.(*handshakeBucket)
		if b.key == key || b.lim.TokensAt(now) < float64(l.burst) {
			return
		}
		l.remove(e)
	}
}

func (l *HandshakeLimit) remove(e *list.Element) {
	delete(l.clients, e.Value.(*handshakeBucket).key)
	l.lru.Remove(e)
}

// clientKey is the key a per-client limit counts under: the address, or for
// IPv6 its /64 prefix, which one subscriber is typically given whole.
func clientKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}
