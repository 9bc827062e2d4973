package wsguard

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"

	"github.com/wsguard/kit/errlog"
)

// SubjectConnLimit caps the open connections of one authenticated
// subject, so that one account cannot hold the server's connections from
// many addresses. It counts in memory, or in a [ConnStore] shared by
// several servers.
//
// The subject is the one authentication middleware put in the request
// context ([WithSubject]), so the Handler goes after it: with
// [WithHandshake], after the authentication middleware. A request without
// a subject (first-message authentication) is not counted.
type SubjectConnLimit struct {
	max   int
	store ConnStore
	cfg   guardConfig

	mu    sync.Mutex
	bySub map[string]int
}

// NewSubjectConnLimit returns a cap of perSubject open connections per
// subject, counted in st, or in memory when st is nil. A shared store
// counts subjects as its clients, so give it a key space of its own, apart
// from the one of [WithConnStore] (with store/redisstore,
// Store.SubjectConns). Over the cap a request
// is refused as errlog.ResourceExhausted (HTTP 429) with a Retry-After of
// one second.
func NewSubjectConnLimit(perSubject int, st ConnStore, opts ...GuardOption) *SubjectConnLimit {
	return &SubjectConnLimit{max: max(perSubject, 1), store: st, cfg: newGuardConfig(opts), bySub: make(map[string]int)}
}

// Acquire takes a slot for the subject of r, if any; release frees it and
// is never nil.
func (l *SubjectConnLimit) Acquire(r *http.Request) (release func(), err error) {
	sub := SubjectFrom(r.Context())
	if sub == "" {
		return releaseNothing, nil
	}
	if l.store != nil {
		release, err := l.store.AcquireConn(r.Context(), sub, math.MaxInt32, l.max)
		switch {
		case err == nil:
			return release, nil
		case errors.Is(err, ErrClientCap):
			return releaseNothing, retryError(errlog.ResourceExhausted, connRetryAfter,
				fmt.Errorf("subject %s: %w", quoteUntrusted(sub), err))
		}
		return releaseNothing, errlog.NewError(errlog.Unavailable, fmt.Errorf("shared subject caps: %w", err))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.bySub[sub]; n >= l.max {
		return releaseNothing, retryError(errlog.ResourceExhausted, connRetryAfter,
			fmt.Errorf("subject %s has %d connections, the cap per subject", quoteUntrusted(sub), n))
	}
	l.bySub[sub]++
	var once sync.Once
	return func() { once.Do(func() { l.release(sub) }) }, nil
}

func (l *SubjectConnLimit) release(sub string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.bySub[sub] - 1; n > 0 {
		l.bySub[sub] = n
	} else {
		delete(l.bySub, sub)
	}
}

// Handler holds a slot while h runs, as [ConnLimit.Handler] does, and
// rejects requests over the cap with [Reject].
func (l *SubjectConnLimit) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, err := l.Acquire(r)
		if err != nil {
			if o, _ := r.Context().Value(observerKey{}).(Observer); o != nil && RetryAfter(err) > 0 {
				o.Observe(r.Context(), Event{Kind: EventLimited, Code: errlog.ResourceExhausted, Reason: LimitSubjectConns, Err: err, Request: r})
			}
			Reject(w, r, l.cfg.logger, err)
			return
		}
		defer release()
		h.ServeHTTP(w, r)
	})
}
