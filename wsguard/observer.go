package wsguard

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/wsguard/kit/errlog"
)

// Observer receives the server's events, for metrics or tracing. Observe
// runs in line on the goroutine where the event happens (the connection's,
// for messages), so it must be fast, must not block and must be safe for
// concurrent use. e is passed by value and must not be kept after Observe
// returns if it refers to a [Conn] or request that may end.
//
// A server without an observer ([WithObserver]) skips every event behind
// one nil check, so observing costs nothing when unused.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to [Observer].
type ObserverFunc func(ctx context.Context, e Event)

// Observe implements [Observer].
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// EventKind names what an [Event] reports.
type EventKind uint8

// The events. The fields of [Event] each kind sets are listed beside it.
const (
	// EventHandshakeAccepted: the upgrade succeeded. Request.
	EventHandshakeAccepted EventKind = iota + 1
	// EventHandshakeRejected: a guard, the authentication middleware or
	// the transport refused the handshake. Code, Status (HTTP), Err,
	// Request.
	EventHandshakeRejected
	// EventConnOpened: a connection is open, right after the upgrade.
	// Conn, or Request alone for one served behind [Server.Guard]. Every
	// opened connection is later reported closed once.
	EventConnOpened
	// EventConnClosed: a connection ended. Code (0 when the application
	// closed it with [Conn.Close]), Status (the close status sent, or the
	// peer's), Duration (how long it was open), Err, Conn.
	EventConnClosed
	// EventMessageIn: a message was read and handled. Size, Duration (the
	// handler's latency, middleware included), Conn.
	EventMessageIn
	// EventMessageOut: a message was sent. Size, Conn.
	EventMessageOut
	// EventLimited: a limit refused a handshake or closed a connection.
	// Reason ([LimitMessageRate], [LimitHandshakeRate], [LimitConnCap],
	// [LimitSubjectConns], [LimitSendQueue]),
	// Code, and Conn or Request.
	EventLimited
	// EventAuthFailed: a token was refused, before or after the upgrade.
	// Reason (the public text: "invalid token", "token expired"), Err,
	// and Conn or Request.
	EventAuthFailed
	// EventStoreError: a shared store ([Store] users, revocation) could not
	// be reached and the use failed open or closed as configured. Reason
	// (the use: [LimitHandshakeRate], [LimitConnCap], "revocation",
	// "group"), Err.
	EventStoreError
	// EventSendQueued: [Conn.Enqueue] queued a message. Size is the
	// queue's length in messages, this one included: its distribution
	// shows how far clients fall behind. Conn.
	EventSendQueued
)

var eventNames = [...]string{
	EventHandshakeAccepted: "handshake_accepted",
	EventHandshakeRejected: "handshake_rejected",
	EventConnOpened:        "conn_opened",
	EventConnClosed:        "conn_closed",
	EventMessageIn:         "message_in",
	EventMessageOut:        "message_out",
	EventLimited:           "limited",
	EventAuthFailed:        "auth_failed",
	EventStoreError:        "store_error",
	EventSendQueued:        "send_queued",
}

// String returns the kind's snake_case name, as [LogObserver] logs it.
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// The reasons of [EventLimited], and uses of [EventStoreError].
const (
	LimitMessageRate   = "message_rate"
	LimitHandshakeRate = "handshake_rate"
	LimitConnCap       = "conn_cap"
	LimitSubjectConns  = "subject_conns"
)

// Event is one thing that happened. Which fields are set depends on Kind.
// Reason and Code come from small fixed sets, fit as metric labels; Conn,
// Request and Err carry the detail (client IP, subject) that must not be.
type Event struct {
	Kind     EventKind
	Code     errlog.Code
	Status   int
	Size     int
	Duration time.Duration
	Reason   string
	Err      error
	Conn     *Conn
	Request  *http.Request
}

// WithObserver sends the server's events to o; several calls add observers
// ([Observers]). The built-in guards and any handshake middleware that
// rejects with [Reject] report their refusals. nil is refused.
func WithObserver(o Observer) Option {
	return func(c *config) {
		if o == nil {
			misconfigured("WithObserver(nil)", "needs an Observer")
		}
		c.observer = Observers(c.observer, o)
	}
}

// Observers returns an Observer that passes each event to every non-nil
// one of obs in turn, or nil when there is none.
func Observers(obs ...Observer) Observer {
	var all multiObserver
	for _, o := range obs {
		switch o := o.(type) {
		case nil:
		case multiObserver:
			all = append(all, o...)
		default:
			all = append(all, o)
		}
	}
	switch len(all) {
	case 0:
		return nil
	case 1:
		return all[0]
	}
	return all
}

type multiObserver []Observer

func (m multiObserver) Observe(ctx context.Context, e Event) {
	for _, o := range m {
		o.Observe(ctx, e)
	}
}

// LogObserver returns an Observer that writes one line per event to l at
// level (nil l means slog.Default()), naming the connection as the
// server's own lines do. The server's closing and rejection lines are
// written whether or not it is used; it is for tracing every event, at
// debug level typically.
func LogObserver(l *slog.Logger, level slog.Level) Observer {
	l = errlog.OrDefault(l)
	return ObserverFunc(func(ctx context.Context, e Event) {
		if !l.Enabled(ctx, level) {
			return
		}
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs, slog.String("event", e.Kind.String()))
		if e.Conn != nil {
			attrs = append(attrs, e.Conn.logAttrs()...)
		} else if e.Request != nil {
			attrs = append(attrs, slog.String(errlog.KeyRemote, ClientIP(e.Request).String()))
		}
		if e.Code != 0 {
			attrs = append(attrs, slog.String(errlog.KeyCode, e.Code.String()))
		}
		if e.Status != 0 {
			attrs = append(attrs, slog.Int(errlog.KeyStatus, e.Status))
		}
		if e.Size != 0 {
			attrs = append(attrs, slog.Int("size", e.Size))
		}
		if e.Duration != 0 {
			attrs = append(attrs, slog.Duration("duration", e.Duration))
		}
		if e.Reason != "" {
			attrs = append(attrs, slog.String(errlog.KeyReason, e.Reason))
		}
		if e.Err != nil {
			attrs = append(attrs, errlog.ErrAttr(e.Err))
		}
		l.LogAttrs(ctx, level, "wsguard event", attrs...)
	})
}

// observeRejected reports a refused handshake to the observer r carries,
// if any, and as an authentication failure when it was one.
func observeRejected(r *http.Request, code errlog.Code, status int, err error) {
	o := ObserverFrom(r.Context())
	if o == nil {
		return
	}
	ctx := r.Context()
	o.Observe(ctx, Event{Kind: EventHandshakeRejected, Code: code, Status: status, Err: err, Request: r})
	if code == errlog.Unauthenticated {
		o.Observe(ctx, Event{Kind: EventAuthFailed, Code: code, Reason: errlog.TextOf(err), Err: err, Request: r})
	}
}

// observeOpened reports an upgrade. s.obs is not nil.
func (s *Server) observeOpened(r *http.Request, c *Conn) {
	c.opened = time.Now().UnixNano()
	s.obs.Observe(r.Context(), Event{Kind: EventHandshakeAccepted, Request: r})
	s.obs.Observe(c.ctx, Event{Kind: EventConnOpened, Conn: c})
}

// observeClosed reports the end of a connection. c.srv.obs is not nil.
func (c *Conn) observeClosed(e *ending) {
	o := c.srv.obs
	var code errlog.Code
	if e.err != nil {
		code = errlog.CodeOf(e.err)
	}
	o.Observe(c.ctx, Event{Kind: EventConnClosed, Code: code, Status: int(e.status), Err: e.err,
		Duration: time.Duration(time.Now().UnixNano() - c.opened), Conn: c})
	if code == errlog.Unauthenticated {
		o.Observe(c.ctx, Event{Kind: EventAuthFailed, Code: code, Reason: errlog.TextOf(e.err), Err: e.err, Conn: c})
	}
}

// observedHandle is [Conn.handle] timed for the observer, apart so that
// an unobserved server's frame stays as small as it was.
func (c *Conn) observedHandle() error {
	size, start := len(c.msg.Data), time.Now()
	err := c.handle()
	c.srv.obs.Observe(c.ctx, Event{Kind: EventMessageIn, Size: size, Duration: time.Since(start), Conn: c})
	return err
}
