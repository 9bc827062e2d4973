package validate

import (
	"context"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/wsguard/kit/wsguard"
)

// DefaultDedupLimit is how many recent messages [Dedup] remembers per
// connection unless [WithDedupLimit] says otherwise.
const DefaultDedupLimit = 32

// DedupOption configures [Dedup].
type DedupOption func(*dedupConfig)

type dedupConfig struct {
	limit int
	now   func() time.Time
}

// WithDedupLimit sets how many recent messages are remembered per
// connection; the one sighted longest ago is forgotten first. n must be
// >= 1; zero, which would remember nothing, is refused.
func WithDedupLimit(n int) DedupOption {
	return func(c *dedupConfig) {
		if n < 1 {
			misconfigured(fmt.Sprintf("WithDedupLimit(%d)", n), "must be >= 1")
		}
		c.limit = n
	}
}

// WithDedupClock sets the clock; nil means time.Now.
func WithDedupClock(now func() time.Time) DedupOption {
	return func(c *dedupConfig) { c.now = now }
}

// seen is one remembered message. The digest is kept as a 64-bit keyed
// hash: 16 bytes an entry instead of a 64-byte hex string, and with a
// random seed per process a client cannot make two different messages
// collide on purpose.
type seen struct {
	hash uint64
	at   int64 // unix nanoseconds of the last sighting
}

type dedupState struct {
	seen []seen
}

// Dedup returns middleware that drops a message identical (by digest) to
// one this connection sent within the window and that its handler
// accepted: the retry of a client that did not see its message arrive is
// silently absorbed instead of being handled twice. A duplicate renews the
// sighting, so a client retrying in a loop stays absorbed. A message whose
// handler failed is not remembered, so that its retry gets the same
// answer.
//
// Memory is bounded: at most [DefaultDedupLimit] entries of 16 bytes per
// connection (see [WithDedupLimit]), dropped when the connection ends.
// Dedup panics on a window that is not > 0 and on an invalid option.
func Dedup(window time.Duration, opts ...DedupOption) wsguard.Middleware {
	if window <= 0 {
		misconfigured(fmt.Sprintf("Dedup(%v, ...)", window), "the window must be > 0")
	}
	cfg := dedupConfig{limit: DefaultDedupLimit}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	seed := maphash.MakeSeed()
	var states perConn[dedupState]
	return func(next wsguard.Handler) wsguard.Handler {
		return wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
			st := states.get(c)
			h := maphash.String(seed, m.Digest())
			now := cfg.now().UnixNano()
			oldest := 0
			for i := range st.seen {
				e := &st.seen[i]
				if e.hash == h && now-e.at < int64(window) {
					e.at = now
					return nil
				}
				if e.at < st.seen[oldest].at {
					oldest = i
				}
			}
			if err := next.ServeMessage(ctx, c, m); err != nil {
				return err
			}
			if len(st.seen) < cfg.limit {
				st.seen = append(st.seen, seen{h, now})
			} else {
				st.seen[oldest] = seen{h, now}
			}
			return nil
		})
	}
}
