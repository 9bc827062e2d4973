package wsguard

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Defaults applied by [New]; each has an option to change it.
const (
	DefaultReadLimit    = 32 << 10
	DefaultMessageRate  = 100
	DefaultMessageBurst = 200
	DefaultPingInterval = 20 * time.Second
	DefaultIdleTimeout  = 60 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxInvalid   = 5
	DefaultMaxFrames    = 128
)

// Option configures a [Server].
type Option func(*config)

type config struct {
	readLimit      int64
	subprotocols   []string
	origins        []string
	anyOrigin      bool
	messageRate    float64
	messageBurst   int
	pingInterval   time.Duration
	idleTimeout    time.Duration
	writeTimeout   time.Duration
	maxInvalid     int
	maxFrames      int
	binary         bool
	logger         *slog.Logger
	newHash        func() hash.Hash
	maxConns       int
	maxConnsPerIP  int
	handshakeRate  float64
	handshakeBurst int
	realIP         *RealIP
	ipFilter       *IPFilter
	handshake      []func(http.Handler) http.Handler
	onConnect      []func(context.Context, *Conn) error
	onDisconnect   []func(*Conn)
	middleware     []Middleware
	observer       Observer
	connStore      ConnStore
	handshakeStore HandshakeStore
	queueBytes     int
	queueMessages  int
}

func defaultConfig() config {
	return config{
		readLimit:      DefaultReadLimit,
		messageRate:    DefaultMessageRate,
		messageBurst:   DefaultMessageBurst,
		pingInterval:   DefaultPingInterval,
		idleTimeout:    DefaultIdleTimeout,
		writeTimeout:   DefaultWriteTimeout,
		maxInvalid:     DefaultMaxInvalid,
		maxFrames:      DefaultMaxFrames,
		newHash:        sha256.New,
		maxConns:       DefaultMaxConns,
		maxConnsPerIP:  DefaultMaxConnsPerIP,
		handshakeRate:  DefaultHandshakeRate,
		handshakeBurst: DefaultHandshakeBurst,
		queueBytes:     DefaultSendQueueBytes,
		queueMessages:  DefaultSendQueueMessages,
	}
}

// maxReadLimit bounds [WithReadLimit]: a buffer of a GiB for each
// connection is already a denial of service.
const maxReadLimit = 1 << 30

// WithReadLimit sets the largest message accepted, in bytes. A larger one
// closes the connection with 1009. n must be between 1 and 1 GiB: there is
// no unlimited setting, and zero is refused.
func WithReadLimit(n int64) Option {
	return func(c *config) {
		if n < 1 || n > maxReadLimit {
			misconfigured(fmt.Sprintf("WithReadLimit(%d)", n), "must be between 1 and 1 GiB")
		}
		c.readLimit = n
	}
}

// WithSubprotocols sets the application subprotocols the server selects
// from, in order of preference. A client offering none of them gets no
// subprotocol; so does every client when none is given. Each must be an
// HTTP token (RFC 9110), as Sec-WebSocket-Protocol requires: an empty or
// malformed one is refused.
func WithSubprotocols(protocols ...string) Option {
	return func(c *config) {
		for _, p := range protocols {
			if !isToken(p) {
				misconfigured(fmt.Sprintf("WithSubprotocols(%q)", p), "not an HTTP token")
			}
		}
		c.subprotocols = append([]string(nil), protocols...)
	}
}

// WithOrigins allows cross-origin handshakes from pages whose Origin host
// matches one of the path.Match patterns ("app.example.com",
// "*.example.org", or "https://app.example.com" to bind the scheme too).
// Same-host pages and clients sending no Origin are always allowed. A
// pattern [NewOriginCheck] refuses is refused here, and so is WithOrigins
// beside [InsecureSkipOriginCheck], which would ignore it.
func WithOrigins(patterns ...string) Option {
	return func(c *config) {
		for _, p := range patterns {
			if _, err := NewOriginCheck([]string{p}); err != nil {
				misconfigured(fmt.Sprintf("WithOrigins(%q)", p), strings.TrimPrefix(err.Error(), "wsguard: "))
			}
		}
		c.origins = append(c.origins, patterns...)
	}
}

// InsecureSkipOriginCheck accepts handshakes from pages of any origin. A
// page on any site can then open a socket with the visitor's cookies
// (cross-site WebSocket hijacking); use it only when no ambient credential
// authenticates the socket.
func InsecureSkipOriginCheck() Option {
	return func(c *config) { c.anyOrigin = true }
}

// WithMessageRate sets the per-connection message rate (messages per second)
// and burst. A client over it is closed with 4429. Pings and pongs from the
// client count as messages: the server answers every ping with a write.
// Messages that waited in the socket while a handler held the connection
// are not charged as a burst: after a handler that took long enough for
// more than half the burst to pile up, the burst is raised by what the
// rate allows over that time (up to 10 s of it), for as long again.
// The rate must be a finite number > 0 and the burst >= 1: a zero would
// refuse every message, so it is refused.
func WithMessageRate(perSecond float64, burst int) Option {
	return func(c *config) {
		mustPositiveRate(rateCall("WithMessageRate", perSecond, burst), perSecond, burst)
		c.messageRate, c.messageBurst = perSecond, burst
	}
}

// WithPingInterval sets how long a connection may be quiet before the server
// pings it. Zero means no pings (the idle timeout still applies); a
// negative interval is refused.
func WithPingInterval(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			misconfigured(fmt.Sprintf("WithPingInterval(%v)", d), "must be >= 0 (0: no pings)")
		}
		c.pingInterval = d
	}
}

// WithIdleTimeout sets how long a connection may go without a message from
// the peer, or a pong answering one of the server's keepalive pings, before
// it is closed with 1001. The peer's own pings and unsolicited pongs do not
// count: they would keep a connection that does nothing else open forever.
// Zero means no idle timeout; a negative one is refused.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			misconfigured(fmt.Sprintf("WithIdleTimeout(%v)", d), "must be >= 0 (0: no idle timeout)")
		}
		c.idleTimeout = d
	}
}

// WithWriteTimeout bounds each write, so that a client that stops reading
// cannot hold a sender forever. It must be > 0: there is no setting
// without a bound, and zero is refused.
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			misconfigured(fmt.Sprintf("WithWriteTimeout(%v)", d), "must be > 0")
		}
		c.writeTimeout = d
	}
}

// WithMaxInvalid sets how many invalid messages in a row close the
// connection with 1008: the n-th does, the ones before it are answered
// with an error reply. n must be >= 1; WithMaxInvalid(1) closes on the
// first invalid message, and zero is refused.
func WithMaxInvalid(n int) Option {
	return func(c *config) {
		if n < 1 {
			misconfigured(fmt.Sprintf("WithMaxInvalid(%d)", n), "must be >= 1")
		}
		c.maxInvalid = n
	}
}

// WithMaxFrames sets how many frames one message may arrive in. A message
// of more frames closes the connection with 1009, as an oversized one does:
// the read limit counts payload bytes, so empty continuation frames would
// otherwise cost the client nothing. Browsers and most client libraries
// send a message as one frame. n must be >= 1, and zero is refused:
// WithMaxFrames(1) refuses every fragmented message.
func WithMaxFrames(n int) Option {
	return func(c *config) {
		if n < 1 {
			misconfigured(fmt.Sprintf("WithMaxFrames(%d)", n), "must be >= 1")
		}
		c.maxFrames = n
	}
}

// WithBinary lets binary messages through to the handler. Without it a
// binary message closes the connection with 1003.
func WithBinary() Option {
	return func(c *config) { c.binary = true }
}

// WithLogger sets the logger; nil means slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithDigest sets the hash behind [Message.Digest]; the default is SHA-256.
// nil is refused.
func WithDigest(newHash func() hash.Hash) Option {
	return func(c *config) {
		if newHash == nil {
			misconfigured("WithDigest(nil)", "needs a hash constructor")
		}
		c.newHash = newHash
	}
}

// WithMaxConns caps open connections in total (over it: HTTP 503) and per
// client IP (over it: HTTP 429), as [NewConnLimit] does. Both must be >= 1;
// zero is refused.
func WithMaxConns(total, perIP int) Option {
	return func(c *config) {
		mustConnCaps(fmt.Sprintf("WithMaxConns(%d, %d)", total, perIP), total, perIP)
		c.maxConns, c.maxConnsPerIP = total, perIP
	}
}

// WithHandshakeRate sets the per-IP handshake rate (per second) and burst,
// as [NewHandshakeLimit] does; over it a client gets HTTP 429 with
// Retry-After. The rate must be a finite number > 0 and the burst >= 1;
// zero is refused.
func WithHandshakeRate(perSecond float64, burst int) Option {
	return func(c *config) {
		mustPositiveRate(rateCall("WithHandshakeRate", perSecond, burst), perSecond, burst)
		c.handshakeRate, c.handshakeBurst = perSecond, burst
	}
}

// WithRealIP resolves client IPs through trusted proxies; without it the
// client IP is the peer address of the TCP connection. nil is refused:
// it is what a failed [NewRealIP] returns.
func WithRealIP(p *RealIP) Option {
	return func(c *config) {
		if p == nil {
			misconfigured("WithRealIP(nil)", "needs the RealIP that NewRealIP returned")
		}
		c.realIP = p
	}
}

// WithIPFilter admits only the client IPs the filter allows. nil is
// refused: it is what a failed [NewIPFilter] returns, and a server without
// the filter would admit everyone.
func WithIPFilter(f *IPFilter) Option {
	return func(c *config) {
		if f == nil {
			misconfigured("WithIPFilter(nil)", "needs the IPFilter that NewIPFilter returned")
		}
		c.ipFilter = f
	}
}

// WithHandshake adds HTTP middleware that runs after the built-in guards and
// before the upgrade, first outermost: the place for authentication, so that
// a flood of bad tokens is rate limited before any is verified.
//
// A nil middleware is refused.
func WithHandshake(mw ...func(http.Handler) http.Handler) Option {
	return func(c *config) {
		for i, m := range mw {
			if m == nil {
				misconfigured(fmt.Sprintf("WithHandshake(middleware %d of %d: nil)", i+1, len(mw)), "needs a middleware")
			}
		}
		c.handshake = append(c.handshake, mw...)
	}
}

// WithConnect adds a function run on the connection's goroutine right after
// the upgrade, before the first message is read: the place to start a
// per-connection timer (an authentication deadline, a token's expiry) or to
// greet the client. An error closes the connection as its code says. nil
// is refused.
func WithConnect(f func(ctx context.Context, c *Conn) error) Option {
	return func(c *config) {
		if f == nil {
			misconfigured("WithConnect(nil)", "needs a function")
		}
		c.onConnect = append(c.onConnect, f)
	}
}

// WithDisconnect adds a function run on the connection's goroutine once
// the connection has closed, before its closing log line: the place to
// release what a connect hook took (stop its timer, forget the
// connection). It runs once for every upgraded connection, whether or not
// its connect hooks ran or succeeded, with c.Context() canceled and
// context.Cause(c.Context()) saying why the connection ended. Unlike
// context.AfterFunc on that context, it costs no goroutine. A panic in it
// is logged as an internal error and does not keep the other disconnect
// hooks from running. nil is refused.
func WithDisconnect(f func(c *Conn)) Option {
	return func(c *config) {
		if f == nil {
			misconfigured("WithDisconnect(nil)", "needs a function")
		}
		c.onDisconnect = append(c.onDisconnect, f)
	}
}

// WithMiddleware wraps the handler given to [New] in message middleware,
// first outermost, so that a package can install its connection hooks and
// its message middleware as one set of options. A nil middleware is
// refused.
func WithMiddleware(mws ...Middleware) Option {
	return func(c *config) {
		for i, m := range mws {
			if m == nil {
				misconfigured(fmt.Sprintf("WithMiddleware(middleware %d of %d: nil)", i+1, len(mws)), "needs a middleware")
			}
		}
		c.middleware = append(c.middleware, mws...)
	}
}
