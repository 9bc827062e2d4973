package redisstore

import (
	"context"
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
	log     *slog.Logger
	obs     wsguard.Observer
}

// Option configures a [Store].
type Option func(*Store)

// WithPrefix sets the prefix of every key and channel, so that several
// applications can share one Redis. Instances that must share limits use
// the same prefix.
func WithPrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// WithTimeout sets the bound of each command; non-positive means
// [DefaultTimeout].
func WithTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithLogger sets the logger failures are written to; nil means
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// WithObserver reports every failure to reach Redis to o as a
// wsguard.EventStoreError.
func WithObserver(o wsguard.Observer) Option { return func(s *Store) { s.obs = o } }

// New returns a Store over c. The caller keeps ownership of c and closes
// it after the Store's last use.
func New(c redis.UniversalClient, opts ...Option) *Store {
	s := &Store{c: c, prefix: DefaultPrefix, timeout: DefaultTimeout}
	for _, o := range opts {
		o(s)
	}
	s.log = errlog.OrDefault(s.log)
	return s
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
	leaseTTL time.Duration
}

// WithFailMode sets what the use does when Redis cannot be reached. The
// defaults are [FailClosed] for revocation and [FailOpen] for the limits.
func WithFailMode(m FailMode) UseOption { return func(c *useConfig) { c.mode = m } }

func newUseConfig(def FailMode, opts []UseOption) useConfig {
	c := useConfig{mode: def}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// failed logs and reports a failure to reach Redis for use.
func (s *Store) failed(ctx context.Context, use string, mode FailMode, err error) {
	action := "refused"
	if mode == FailOpen {
		action = "admitted (fail open)"
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, "redis store unreachable",
		slog.String("use", use), slog.String("action", action), errlog.ErrAttr(err))
	if s.obs != nil {
		s.obs.Observe(ctx, wsguard.Event{Kind: wsguard.EventStoreError, Reason: use, Err: err})
	}
}

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}
