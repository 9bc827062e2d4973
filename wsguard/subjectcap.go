package wsguard

import (
	"context"
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
// [WithHandshake], after the authentication middleware. A connection
// whose subject becomes known after the upgrade (first-message
// authentication, a signed message's key id: [Conn.SetSubject]) is
// counted from then on, and closed with 4429 (errlog.ResourceExhausted)
// when that subject is over the cap.
type SubjectConnLimit struct {
	max   int
	store ConnStore

	mu    sync.Mutex
	bySub map[string]int
}

// NewSubjectConnLimit returns a cap of perSubject open connections per
// subject, counted in st, or in memory when st is nil. A shared store
// counts subjects as its clients, so give it a key space of its own, apart
// from the one of [WithConnStore] (with store/redisstore,
// Store.SubjectConns). Over the cap a request
// is refused as errlog.ResourceExhausted (HTTP 429) with a Retry-After of
// one second. perSubject must be >= 1: NewSubjectConnLimit panics on a
// zero or negative cap.
func NewSubjectConnLimit(perSubject int, st ConnStore) *SubjectConnLimit {
	if perSubject < 1 {
		misconfigured(fmt.Sprintf("NewSubjectConnLimit(%d, ...)", perSubject), "must be >= 1")
	}
	return &SubjectConnLimit{max: perSubject, store: st, bySub: make(map[string]int)}
}

// Acquire takes a slot for the subject of r, if any; release frees it and
// is never nil.
func (l *SubjectConnLimit) Acquire(r *http.Request) (release func(), err error) {
	return l.acquire(r.Context(), SubjectFrom(r.Context()))
}

func (l *SubjectConnLimit) acquire(ctx context.Context, sub string) (release func(), err error) {
	if sub == "" {
		return releaseNothing, nil
	}
	if l.store != nil {
		release, err := l.store.AcquireConn(ctx, sub, math.MaxInt32, l.max)
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
// rejects requests over the cap with [Reject]. The slot follows the
// subject a connection served by h takes later ([Conn.SetSubject]).
func (l *SubjectConnLimit) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub := SubjectFrom(r.Context())
		release, err := l.acquire(r.Context(), sub)
		if err != nil {
			refuse(w, r, LimitSubjectConns, err)
			return
		}
		parent, _ := r.Context().Value(subjectSlotKey{}).(*subjectSlot)
		slot := &subjectSlot{l: l, parent: parent, sub: sub, release: release}
		defer slot.end()
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), subjectSlotKey{}, slot)))
	})
}

type subjectSlotKey struct{}

// subjectSlot is the slot a [SubjectConnLimit] holds for one request. It
// travels in the request context, which the connection's context
// inherits, so that a subject set after the upgrade is counted too.
type subjectSlot struct {
	l      *SubjectConnLimit
	parent *subjectSlot // of a limit in front of this one, if any

	mu      sync.Mutex
	sub     string // "" while there is no subject
	release func()
	ended   bool // the request is over: nothing more is taken
}

// move makes the slot count sub instead of the subject it counts now. Over
// the cap it returns the error and keeps the slot it had.
func (s *subjectSlot) move(ctx context.Context, sub string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || sub == s.sub {
		return nil
	}
	release, err := s.l.acquire(ctx, sub)
	if err != nil {
		return err
	}
	s.release()
	s.sub, s.release = sub, release
	return nil
}

func (s *subjectSlot) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	s.release()
}

// countSubject moves the slots of the [SubjectConnLimit]s guarding c, if
// any, to c's new subject sub, and closes c when sub is over a cap.
func (c *Conn) countSubject(sub string) {
	var err error
	slot, _ := c.ctx.Value(subjectSlotKey{}).(*subjectSlot)
	for ; slot != nil && err == nil; slot = slot.parent {
		err = slot.move(c.ctx, sub)
	}
	if err == nil {
		return
	}
	if o := c.srv.obs; o != nil && RetryAfter(err) > 0 {
		o.Observe(c.ctx, Event{Kind: EventLimited, Code: errlog.ResourceExhausted, Reason: LimitSubjectConns, Err: err, Conn: c})
	}
	c.CloseWithError(err)
}
