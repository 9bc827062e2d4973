package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// DefaultTimeout bounds each Redis command, so that a slow or partitioned
// Redis delays a handshake by at most this much before the use's
// [FailMode] applies.
const DefaultTimeout = 500 * time.Millisecond

// DefaultPrefix starts every key and channel the store uses.
const DefaultPrefix = "wsguard:"

// Store is wsguard's shared state in one Redis (or Redis cluster, through
// a redis.UniversalClient). It is safe for concurrent use.
type Store struct {
	c       redis.UniversalClient
	prefix  string
	timeout time.Duration
}

// Option configures a [Store].
type Option func(*Store)

// WithPrefix sets the prefix of every key and channel, so that several
// applications can share one Redis. Instances that must share limits use
// the same prefix. The empty prefix is refused: keys without one would
// mix with every other application's.
func WithPrefix(p string) Option {
	return func(s *Store) {
		if p == "" {
			misconfigured(`WithPrefix("")`, "needs a prefix")
		}
		s.prefix = p
	}
}

// WithTimeout sets the bound of each command. It must be > 0; zero is
// refused.
func WithTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d <= 0 {
			misconfigured(fmt.Sprintf("WithTimeout(%v)", d), "must be > 0")
		}
		s.timeout = d
	}
}

// New returns a Store over c. The caller keeps ownership of c and closes
// it after the Store's last use. New panics on a nil c and on an invalid
// option, as the package documentation describes.
//
// A Store has no logger or observer of its own: a failure to reach Redis
// is logged to, and reported as a wsguard.EventStoreError to, those of
// the wsguard server whose request or connection the failed call served
// (wsguard.LoggerFrom, wsguard.ObserverFrom).
func New(c redis.UniversalClient, opts ...Option) *Store {
	if c == nil {
		misconfigured("New(nil, ...)", "needs a Redis client")
	}
	s := &Store{c: c, prefix: DefaultPrefix, timeout: DefaultTimeout}
	for _, o := range opts {
		o(s)
	}
	return s
}

// misconfigured panics with the message the package documentation
// promises for a configuration mistake: the option or call as it was
// made, then what is wrong with it.
func misconfigured(call, why string) {
	panic("redisstore: " + call + ": " + why)
}

// FailMode says what a use does when Redis cannot be reached.
type FailMode uint8

const (
	// FailClosed refuses: the check reports an error (revocation) or the
	// limit as reached.
	FailClosed FailMode = iota + 1
	// FailOpen admits as if the limit were not reached, with a warning
	// log line and a wsguard.EventStoreError.
	FailOpen
)

// UseOption configures one use of a Store ([Store.Revoker], [Store.Conns],
// [Store.Handshakes]).
type UseOption func(*useConfig)

type useConfig struct {
	mode     FailMode
	leaseTTL time.Duration // 0: not given
}

// WithFailMode sets what the use does when Redis cannot be reached. The
// defaults are [FailClosed] for revocation and [FailOpen] for the limits;
// a value that is neither is refused.
func WithFailMode(m FailMode) UseOption {
	return func(c *useConfig) {
		if m != FailClosed && m != FailOpen {
			misconfigured(fmt.Sprintf("WithFailMode(%d)", m), "must be FailClosed or FailOpen")
		}
		c.mode = m
	}
}

// newUseConfig applies opts for the use made by method (Conns,
// Handshakes, Revoker), refusing an option the use would ignore.
func newUseConfig(method string, def FailMode, opts []UseOption) useConfig {
	c := useConfig{mode: def}
	for _, o := range opts {
		o(&c)
	}
	if c.leaseTTL != 0 && method != "Conns" {
		misconfigured(fmt.Sprintf("Store.%s(WithLeaseTTL(%v))", method, c.leaseTTL), "leases are Store.Conns' only")
	}
	return c
}

// What a use did about a failure to reach Redis, as its log line says.
const (
	actionAdmitted     = "admitted (fail open)"
	actionRefused      = "refused (fail closed)"
	actionNotFreed     = "lease not released: it counts until its TTL runs out"
	actionNotRefreshed = "leases not refreshed: they lapse after their TTL unless a later refresh succeeds"
)

// checked returns what a check failing in mode did.
func checked(mode FailMode) string {
	if mode == FailOpen {
		return actionAdmitted
	}
	return actionRefused
}

// failed logs and reports a failure to reach Redis for use, saying what
// was done about it.
func (s *Store) failed(ctx context.Context, use, action string, err error) {
	wsguard.LoggerFrom(ctx).LogAttrs(ctx, slog.LevelWarn, "redis store unreachable",
		slog.String("use", use), slog.String("action", action), errlog.ErrAttr(err))
	if o := wsguard.ObserverFrom(ctx); o != nil {
		o.Observe(ctx, wsguard.Event{Kind: wsguard.EventStoreError, Reason: use, Err: err})
	}
}

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}
