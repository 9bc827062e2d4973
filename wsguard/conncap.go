package wsguard

import (
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsguard/kit/errlog"
)

// Defaults of [NewConnLimit], after centrifugo's: enough for a busy node,
// few enough that one client cannot take the file descriptors of all others.
const (
	DefaultMaxConns      = 10000
	DefaultMaxConnsPerIP = 100
)

// connRetryAfter is the Retry-After sent when a cap is full. A slot frees
// when some connection ends, which cannot be predicted, so this is the
// shortest delay the header can express: a client is not kept waiting for a
// slot that is already free, and one that retries too soon is refused
// cheaply again.
const connRetryAfter = time.Second

// ConnLimit caps open connections in total and per client, so that neither
// one client nor all of them together can exhaust the server's memory and
// file descriptors.
//
// A client is its IP address ([ClientIP]; put [RealIP] in front when there
// are proxies), and for IPv6 its /64 prefix, as for [HandshakeLimit].
// Requests whose client IP is unknown share one per-client count.
type ConnLimit struct {
	maxTotal  int
	maxClient int
	store     ConnStore // of a Server's WithConnStore; nil: none

	mu       sync.Mutex
	open     int
	byClient map[netip.Addr]int // no zero entries, so it shrinks as clients leave
}

// NewConnLimit returns a cap of total open connections and perIP per
// client ([DefaultMaxConns] and [DefaultMaxConnsPerIP] are the server's).
// Both must be >= 1: NewConnLimit panics on a zero or negative cap. Over
// the per-client cap a request is refused as errlog.ResourceExhausted
// (HTTP 429), over the total as errlog.Unavailable (HTTP 503); both carry a
// Retry-After of one second.
func NewConnLimit(total, perIP int) *ConnLimit {
	mustConnCaps(fmt.Sprintf("NewConnLimit(%d, %d)", total, perIP), total, perIP)
	return &ConnLimit{
		maxTotal:  total,
		maxClient: perIP,
		byClient:  make(map[netip.Addr]int),
	}
}

// Acquire takes a connection slot for the client of r. The caller calls
// release when the connection ends; calling it again does nothing, so it
// can be both deferred and called early. On error release is a no-op, never
// nil.
func (l *ConnLimit) Acquire(r *http.Request) (release func(), err error) {
	key := clientKey(ClientIP(r))
	if err := l.acquire(key); err != nil {
		return releaseNothing, err
	}
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			l.release(key)
		}
	}, nil
}

// acquire takes a slot for the client key.
func (l *ConnLimit) acquire(key netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.allows(key); err != nil {
		return err
	}
	l.open++
	l.byClient[key]++
	return nil
}

func releaseNothing() {}

// Check reports whether a connection from the client of r would be admitted
// now, without taking a slot: between Check and the upgrade another request
// may take it, so a server holds a slot with [ConnLimit.Acquire].
func (l *ConnLimit) Check(r *http.Request) error {
	key := clientKey(ClientIP(r))
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allows(key)
}

// Handler holds a slot while h runs and rejects requests over a cap with
// [Reject]. A WebSocket handler written with gorilla/websocket or
// coder/websocket serves the whole connection before it returns, so the
// slot lasts as long as the connection. A handler that hands the connection
// to another goroutine and returns would free the slot early: such a server
// calls [ConnLimit.Acquire] itself and releases when the connection ends.
// A refusal is reported to the request's observer as an [EventLimited]
// ([LimitConnCap]).
func (l *ConnLimit) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s connSlot
		if !l.admit(w, r, &s) {
			return
		}
		defer l.leave(&s)
		h.ServeHTTP(w, r)
	})
}

// connSlot is what a request admitted by a ConnLimit gives back.
type connSlot struct {
	key    netip.Addr // the client's
	shared func()     // the shared store's release, or nil
}

// admit is the Handler's decision, which a Server makes in line: it takes
// a slot for r's client into s, or answers the refusal and returns false.
// With a shared store the request also takes a slot there, after the
// local one. leave gives them back: no release function is made per
// request.
func (l *ConnLimit) admit(w http.ResponseWriter, r *http.Request, s *connSlot) bool {
	s.key = clientKey(ClientIP(r))
	err := l.acquire(s.key)
	if err == nil && l.store != nil {
		if s.shared, err = l.acquireShared(r); err != nil {
			l.release(s.key)
		}
	}
	if err != nil {
		refuse(w, r, LimitConnCap, err)
		return false
	}
	return true
}

// leave gives back the slots admit took into s.
func (l *ConnLimit) leave(s *connSlot) {
	if s.shared != nil {
		s.shared()
	}
	l.release(s.key)
}

// Open returns the number of connections holding a slot.
func (l *ConnLimit) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// allows checks the per-client cap first, so that the client over its own
// cap is told it is the one to slow down even when the server is also full.
// l.mu is held.
func (l *ConnLimit) allows(key netip.Addr) error {
	if n := l.byClient[key]; n >= l.maxClient {
		return retryError(errlog.ResourceExhausted, connRetryAfter,
			fmt.Errorf("client %s has %d connections, the cap per client", key, n))
	}
	if l.open >= l.maxTotal {
		return retryError(errlog.Unavailable, connRetryAfter,
			fmt.Errorf("%d connections open, the cap", l.open))
	}
	return nil
}

func (l *ConnLimit) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n := l.byClient[key] - 1; n > 0 {
		l.byClient[key] = n
	} else {
		delete(l.byClient, key)
	}
}
