package wsguard

import (
	"context"
	"crypto/sha256"
	"hash"
	"log/slog"
	"net/http"
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
	rateStore      RateStore
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
	}
}

// WithReadLimit sets the largest message accepted, in bytes. A larger one
// closes the connection with 1009.
func WithReadLimit(n int64) Option {
	return func(c *config) { c.readLimit = n }
}

// WithSubprotocols sets the application subprotocols the server selects
// from, in order of preference. A client offering none of them gets no
// subprotocol.
func WithSubprotocols(protocols ...string) Option {
	return func(c *config) { c.subprotocols = append([]string(nil), protocols...) }
}

// WithOrigins allows cross-origin handshakes from pages whose Origin host
// matches one of the path.Match patterns ("app.example.com",
// "*.example.org", or "https://app.example.com" to bind the scheme too).
// Same-host pages and clients sending no Origin are always allowed.
func WithOrigins(patterns ...string) Option {
	return func(c *config) { c.origins = append(c.origins, patterns...) }
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
func WithMessageRate(perSecond float64, burst int) Option {
	return func(c *config) { c.messageRate, c.messageBurst = perSecond, burst }
}

// WithPingInterval sets how long a connection may be quiet before the server
// pings it.
func WithPingInterval(d time.Duration) Option {
	return func(c *config) { c.pingInterval = d }
}

// WithIdleTimeout sets how long a connection may go without a message from
// the peer, or a pong answering one of the server's keepalive pings, before
// it is closed with 1001. The peer's own pings and unsolicited pongs do not
// count: they would keep a connection that does nothing else open forever.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) { c.idleTimeout = d }
}

// WithWriteTimeout bounds each write, so that a client that stops reading
// cannot hold a sender forever.
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) { c.writeTimeout = d }
}

// WithMaxInvalid sets how many invalid messages in a row a connection may
// send (each answered with an error reply) before it is closed with 1008.
func WithMaxInvalid(n int) Option {
	return func(c *config) { c.maxInvalid = n }
}

// WithMaxFrames sets how many frames one message may arrive in. A message
// of more frames closes the connection with 1009, as an oversized one does:
// the read limit counts payload bytes, so empty continuation frames would
// otherwise cost the client nothing. Browsers and most client libraries
// send a message as one frame.
func WithMaxFrames(n int) Option {
	return func(c *config) { c.maxFrames = n }
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
func WithDigest(newHash func() hash.Hash) Option {
	return func(c *config) { c.newHash = newHash }
}

// WithMaxConns caps open connections in total (over it: HTTP 503) and per
// client IP (over it: HTTP 429).
func WithMaxConns(total, perIP int) Option {
	return func(c *config) { c.maxConns, c.maxConnsPerIP = total, perIP }
}

// WithHandshakeRate sets the per-IP handshake rate (per second) and burst;
// over it a client gets HTTP 429 with Retry-After.
func WithHandshakeRate(perSecond float64, burst int) Option {
	return func(c *config) { c.handshakeRate, c.handshakeBurst = perSecond, burst }
}

// WithRealIP resolves client IPs through trusted proxies; without it the
// client IP is the peer address of the TCP connection.
func WithRealIP(p *RealIP) Option {
	return func(c *config) { c.realIP = p }
}

// WithIPFilter admits only the client IPs the filter allows.
func WithIPFilter(f *IPFilter) Option {
	return func(c *config) { c.ipFilter = f }
}

// WithHandshake adds HTTP middleware that runs after the built-in guards and
// before the upgrade, first outermost: the place for authentication, so that
// a flood of bad tokens is rate limited before any is verified.
func WithHandshake(mw ...func(http.Handler) http.Handler) Option {
	return func(c *config) { c.handshake = append(c.handshake, mw...) }
}

// WithConnect adds a function run on the connection's goroutine right after
// the upgrade, before the first message is read: the place to start a
// per-connection timer (an authentication deadline, a token's expiry) or to
// greet the client. An error closes the connection as its code says.
func WithConnect(f func(ctx context.Context, c *Conn) error) Option {
	return func(c *config) { c.onConnect = append(c.onConnect, f) }
}

// WithDisconnect adds a function run on the connection's goroutine once
// the connection has closed, before its closing log line: the place to
// release what a connect hook took (stop its timer, forget the
// connection). It runs once for every upgraded connection, whether or not
// its connect hooks ran or succeeded, with c.Context() canceled and
// context.Cause(c.Context()) saying why the connection ended. Unlike
// context.AfterFunc on that context, it costs no goroutine. A panic in it
// is logged as an internal error and does not keep the other disconnect
// hooks from running.
func WithDisconnect(f func(c *Conn)) Option {
	return func(c *config) { c.onDisconnect = append(c.onDisconnect, f) }
}

// WithMiddleware wraps the handler given to [New] in message middleware,
// first outermost, so that a package can install its connection hooks and
// its message middleware as one set of options.
func WithMiddleware(mws ...Middleware) Option {
	return func(c *config) { c.middleware = append(c.middleware, mws...) }
}
