package wsguard

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/wsguard/kit/errlog"
)

// scope is what a Server hands down, through the request context, to
// the guards, middleware and stores installed on it: its logger and its
// observer, so that one log and one observer hold everything.
type scope struct {
	log *slog.Logger // never nil
	obs Observer     // nil: no event is built
}

type scopeKey struct{}

func withScope(r *http.Request, sc *scope) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), scopeKey{}, sc))
}

// handshake is a request's own state in a Server, from the guards to the
// end of its connection, in one allocation: it is the request's context,
// carrying the server's scope and, behind [RealIP], the client IP (where
// a context.WithValue each, and a request copy for each, would take
// five), and it holds the connection slots to give back.
type handshake struct {
	context.Context
	scope *scope
	ip    *netip.Addr // &resolved once RealIP has resolved it, else nil
	limit *ConnLimit  // the cap whose slot the request holds
	slot  connSlot

	resolved netip.Addr
}

// leave gives back the request's connection slot.
func (h *handshake) leave() { h.limit.leave(&h.slot) }

// Value implements context.Context.
func (h *handshake) Value(key any) any {
	switch key.(type) {
	case scopeKey:
		return h.scope
	case clientIPKey:
		if h.ip != nil {
			return h.ip
		}
	}
	return h.Context.Value(key)
}

func scopeFrom(ctx context.Context) *scope {
	sc, _ := ctx.Value(scopeKey{}).(*scope)
	return sc
}

// LoggerFrom returns the logger of the [Server] (or of the [Instrument]
// middleware) serving the request or connection that ctx belongs to, or
// slog.Default() when there is none. The guards, the middleware and the
// stores of this module log through it, so that a component installed on
// a Server writes to the Server's logger ([WithLogger]) without a logger
// of its own.
func LoggerFrom(ctx context.Context) *slog.Logger {
	if sc := scopeFrom(ctx); sc != nil {
		return sc.log
	}
	return slog.Default()
}

// ObserverFrom returns the observer of the [Server] (or of the
// [Instrument] middleware) serving the request or connection that ctx
// belongs to, or nil when there is none. The guards, the middleware and
// the stores of this module report their events to it.
func ObserverFrom(ctx context.Context) Observer {
	if sc := scopeFrom(ctx); sc != nil {
		return sc.obs
	}
	return nil
}

// Instrument returns HTTP middleware that hands l (nil: slog.Default())
// and o (nil: no events) to the guards and middleware after it, as a
// [Server] hands its own logger and observer to those installed on it.
// Put it outermost when composing guards by hand in front of a handler
// that is not a Server; a Server behind it uses its own for what is
// installed on it.
func Instrument(l *slog.Logger, o Observer) func(http.Handler) http.Handler {
	sc := &scope{log: errlog.OrDefault(l), obs: o}
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, withScope(r, sc))
		})
	}
}

// refuse answers a request a guard refused, with [Reject], after
// reporting a limit's refusal (one that carries a retry delay) to the
// observer as an [EventLimited] of the given reason. Every guard's
// Handler and a Server's own guards refuse through it.
func refuse(w http.ResponseWriter, r *http.Request, limit string, err error) {
	if limit != "" && RetryAfter(err) > 0 {
		if o := ObserverFrom(r.Context()); o != nil {
			o.Observe(r.Context(), Event{Kind: EventLimited, Code: errlog.CodeOf(err), Reason: limit, Err: err, Request: r})
		}
	}
	Reject(w, r, nil, err)
}
