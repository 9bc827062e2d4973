package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// Sessions authenticates the connections of a wsguard.Server and keeps
// each one open only while its token is valid:
//
//   - at the handshake, as [Middleware] does; with [WithFirstMessage], a
//     connection without a handshake token must send it as its first
//     text message, within the timeout (else close 4408);
//   - at the token's exp plus the leeway the connection closes with 4401
//     "token expired", from a timer (no goroutine per connection), and no
//     message read from then on reaches the handler;
//   - a refresh message (below) with a new token for the same subject
//     moves the expiry; a token for another subject closes with 4401;
//   - with [WithRevoker], tokens are checked at the handshake, on refresh
//     and periodically; [Sessions.CloseSubject] closes a subject's
//     connections at once.
//
// Install it with its server options:
//
//	sessions := auth.NewSessions(verifier, auth.WithFirstMessage(0))
//	srv := wsguard.New(app, append(sessions.Options(),
//		wsguard.WithSubprotocols("wsguard.v1"))...)
//
// # Refresh
//
// A client refreshes with a message holding the JSON object
//
//	{"type": "refresh", "token": "<jwt>"}
//
// in any spelling JSON allows: members in any order, any whitespace,
// any escapes, as Python's json.dumps and JavaScript's JSON.stringify
// write it. The middleware consumes it and answers
//
//	{"type":"refreshed","exp":<new exp, Unix seconds>}
//
// The type "refresh" is reserved: a text or binary message that is a JSON
// object whose top-level "type" member is "refresh" never reaches the
// handler, so an application cannot use that type for its own messages.
// If such a message is not exactly this object (no token, a token that is
// not a string, another member, a duplicate member, trailing bytes), or
// its token fails verification or revocation or names another subject,
// the connection closes with 4401; the token is never passed on, echoed
// or logged. Other messages go to the handler; telling them apart costs
// two scans of the message for the word refresh (or a \u escape that
// could spell it), and a parse only when one is found.
type Sessions struct {
	v   *Verifier
	cfg config

	mu    sync.Mutex
	bySub map[string]*session // each subject's connections, linked by prev and next
}

// NewSessions returns Sessions verifying tokens with v. It panics on a
// nil v, as the package documentation describes.
func NewSessions(v *Verifier, opts ...Option) *Sessions {
	if v == nil {
		panic("auth: NewSessions(nil, ...): needs a Verifier")
	}
	cfg := config{authTimeout: DefaultAuthTimeout, revokeEvery: DefaultRevocationInterval}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.bad != "" {
		panic(cfg.bad)
	}
	return &Sessions{v: v, cfg: cfg, bySub: make(map[string]*session)}
}

// Options returns the server options of s: the handshake middleware (run
// after wsguard's own guards, so that a flood of bad tokens is rate
// limited before any is verified), the connect hook that starts the
// connection's timer, and the message middleware, outermost, that takes
// the first message as the token when the handshake had none, refuses
// messages once the token has expired and consumes refresh messages.
func (s *Sessions) Options() []wsguard.Option {
	return []wsguard.Option{
		wsguard.WithHandshake(s.handshake),
		wsguard.WithConnect(s.connect),
		wsguard.WithDisconnect(s.disconnect),
		wsguard.WithMiddleware(s.middleware),
	}
}

func (s *Sessions) middleware(next wsguard.Handler) wsguard.Handler {
	return wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		ss := sessionFrom(ctx)
		p := ss.principal.Load()
		switch {
		case p == nil:
			return s.firstMessage(ctx, ss, m)
		case s.v.cfg.now().UnixNano() >= ss.until.Load():
			// The timer closes the connection at this instant; a message
			// read just before it acts must not be served either.
			return s.expired(p)
		case isRefresh(m.Data):
			return s.refresh(ctx, ss, c, m.Data, p)
		}
		return next.ServeMessage(ctx, c, m)
	})
}

// CloseSubject closes every connection authenticated as sub with 4401
// "invalid token" and returns how many there were. It waits for their
// close handshakes, which run in parallel. Revoke the subject first
// ([MemoryRevoker.RevokeSubject]) so that it cannot reconnect.
func (s *Sessions) CloseSubject(sub string) int {
	s.mu.Lock()
	var conns []*wsguard.Conn
	for ss := s.bySub[sub]; ss != nil; ss = ss.next {
		conns = append(conns, ss.conn)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.CloseWithError(invalidf("subject's connections closed by the application", nil)) })
	}
	wg.Wait()
	return len(conns)
}

var (
	errAuthTimeout = errors.New("no token within the authentication timeout")
)

// refreshType is the reserved type of a refresh message.
const refreshType = "refresh"

// refreshMessage is a refresh message, decoded.
type refreshMessage struct {
	Type  string `json:"type"`
	Token string `json:"token"`
}

// refreshed answers a refresh.
type refreshed struct {
	Type string `json:"type"`
	Exp  int64  `json:"exp"`
}

var (
	refreshWord = []byte(refreshType)
	escapeStart = []byte(`\u00`)
)

// isRefresh reports whether data is a refresh message: a JSON object whose
// top-level "type" member is the string "refresh", however spelled. An
// object that is malformed after that member is still one, so that it is
// refused instead of passed on with a token inside. Any such object holds
// the bytes of the word refresh, or spells one of its letters with a \u
// escape, \u006X or \u007X: a message with neither is told apart without
// parsing or allocating, whatever other escapes it has (Python's
// json.dumps escapes every non-ASCII character).
func isRefresh(data []byte) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 || data[0] != '{' || !mayNameRefresh(data) {
		return false
	}
	return hasRefreshType(data)
}

// mayNameRefresh reports whether data holds the word refresh, or a \u
// escape of a lower-case ASCII letter.
func mayNameRefresh(data []byte) bool {
	if bytes.Contains(data, refreshWord) {
		return true
	}
	for {
		i := bytes.Index(data, escapeStart)
		if i < 0 || i+len(escapeStart) >= len(data) {
			return false
		}
		data = data[i+len(escapeStart):]
		if data[0] == '6' || data[0] == '7' {
			return true
		}
	}
}

// hasRefreshType reads the top level of the JSON object data up to a
// "type" member whose value is "refresh". Duplicate names are let through
// here, so that {"type":"chat","type":"refresh"} is found to be a refresh
// message, which its strict decoding then refuses.
func hasRefreshType(data []byte) bool {
	d := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(true))
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return false
	}
	for d.PeekKind() == '"' {
		name, err := d.ReadToken()
		if err != nil {
			return false
		}
		if name.String() == "type" && d.PeekKind() == '"' {
			v, err := d.ReadToken()
			if err != nil {
				return false
			}
			if v.String() == refreshType {
				return true
			}
			continue
		}
		if d.SkipValue() != nil {
			return false
		}
	}
	return false
}

// parseRefresh returns the token of a refresh message, decoded strictly:
// json v2's defaults refuse duplicate members and invalid UTF-8, and no
// member but type and token is allowed. The decoder's error names at most
// a member, never a value, and is escaped and bounded for the log.
func parseRefresh(data []byte) (Token, error) {
	var m refreshMessage
	if err := json.Unmarshal(data, &m, json.RejectUnknownMembers(true)); err != nil {
		return "", invalidf("malformed refresh message", errors.New(errlog.Escape(err.Error())))
	}
	if m.Token == "" {
		return "", invalidf("malformed refresh message", errors.New("no token"))
	}
	return Token(m.Token), nil
}

// session is one connection's authentication state. The handshake
// middleware puts it in the request context, so that it reaches the
// connection's context and every message handler.
//
// It is the one allocation a handshake's authentication makes of its
// own: the context carrying it and the room for the first principal are
// part of it.
type session struct {
	owner     *Sessions
	principal atomic.Pointer[Principal] // nil until authenticated
	until     atomic.Int64              // exp + leeway, Unix nanoseconds
	ctx       sessionContext            // see withSession
	first     Principal                 // the handshake's or first message's principal

	mu         sync.Mutex
	conn       *wsguard.Conn
	timer      *time.Timer // the auth deadline, then expiry and revocation checks
	nextCheck  time.Time   // of the revoker
	registered bool        // in owner.bySub
	ended      bool

	prev, next *session // the subject's other connections; owner.mu
}

// connect runs right after the upgrade: it starts the expiry timer of a
// connection authenticated at the handshake, or the deadline of one that
// must send its token.
func (s *Sessions) connect(ctx context.Context, c *wsguard.Conn) error {
	ss := sessionFrom(ctx)
	ss.mu.Lock()
	ss.conn = c
	ss.mu.Unlock()
	if p := ss.principal.Load(); p != nil {
		return s.begin(ctx, ss, p)
	}
	ss.mu.Lock()
	if !ss.ended {
		ss.timer = time.AfterFunc(s.cfg.authTimeout, ss.fire)
	}
	ss.mu.Unlock()
	return nil
}

// firstMessage authenticates a connection with its first message.
func (s *Sessions) firstMessage(ctx context.Context, ss *session, m *wsguard.Message) error {
	if m.Type != wsguard.MessageText {
		return invalidf("first message is not text", nil)
	}
	// No principal has been stored yet: first is free.
	p, err := s.verify(ctx, Token(m.Data), &ss.first)
	if err != nil {
		return err
	}
	// A handshake token's subject reached the connection's log lines
	// through the request context; this one arrives too late for that.
	ss.conn.SetSubject(p.Subject)
	return s.begin(ctx, ss, p)
}

// begin makes p the connection's principal and greets the client.
func (s *Sessions) begin(ctx context.Context, ss *session, p *Principal) error {
	ss.renew(p)
	ss.register()
	if s.cfg.onAuth != nil {
		return s.cfg.onAuth(ctx, ss.conn, p)
	}
	return nil
}

func (s *Sessions) refresh(ctx context.Context, ss *session, c *wsguard.Conn, data []byte, old *Principal) error {
	tok, err := parseRefresh(data)
	if err != nil {
		return err
	}
	// A principal of its own: old may be first, which handlers still read.
	p, err := s.verify(ctx, tok, nil)
	if err != nil {
		return err
	}
	if p.Subject != old.Subject {
		return invalidf("refresh for another subject",
			fmt.Errorf("token for %s, connection of %s", quote(p.Subject), quote(old.Subject)))
	}
	ss.renew(p)
	return c.SendJSON(ctx, refreshed{Type: "refreshed", Exp: p.Expiry.Unix()})
}

func (s *Sessions) expired(p *Principal) error {
	return errlog.NewPublicError(errlog.Unauthenticated, textExpired,
		fmt.Errorf("session expired: exp %s + leeway %s", p.Expiry.UTC().Format(time.RFC3339), s.v.cfg.leeway))
}

// renew makes p the principal and moves the timer to its expiry.
func (ss *session) renew(p *Principal) {
	o := ss.owner
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.principal.Store(p)
	ss.until.Store(unixNano(p.Expiry.Add(o.v.cfg.leeway)))
	if o.cfg.revoker != nil {
		ss.nextCheck = o.v.cfg.now().Add(o.cfg.revokeEvery)
	}
	ss.scheduleLocked()
}

// lastNano is the last instant whose Unix nanoseconds an int64 holds, in
// the year 2262.
var lastNano = time.Unix(0, math.MaxInt64)

// unixNano returns t in Unix nanoseconds, or the largest int64 for an
// instant after lastNano: the verifier accepts an exp up to the end of
// the year 9999, where time.Time.UnixNano overflows to a date in the past.
func unixNano(t time.Time) int64 {
	if t.After(lastNano) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

// scheduleLocked sets the timer to the next expiry or revocation check.
// ss.mu is held.
func (ss *session) scheduleLocked() {
	if ss.ended {
		return
	}
	at := time.Unix(0, ss.until.Load())
	if ss.owner.cfg.revoker != nil && ss.nextCheck.Before(at) {
		at = ss.nextCheck
	}
	d := at.Sub(ss.owner.v.cfg.now())
	if ss.timer == nil {
		ss.timer = time.AfterFunc(d, ss.fire)
	} else {
		ss.timer.Reset(d)
	}
}

// fire runs on the connection's timer: it closes a connection whose
// authentication deadline or token expiry has come, or checks the
// revoker when that is due.
func (ss *session) fire() {
	o := ss.owner
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return
	}
	c, p, now := ss.conn, ss.principal.Load(), o.v.cfg.now()
	var err error
	check := false
	switch {
	case p == nil:
		err = errlog.NewError(errlog.DeadlineExceeded, errAuthTimeout)
	case now.UnixNano() >= ss.until.Load():
		err = o.expired(p)
	case o.cfg.revoker != nil && !now.Before(ss.nextCheck):
		check = true
		ss.nextCheck = now.Add(o.cfg.revokeEvery)
	}
	if err == nil {
		ss.scheduleLocked()
	}
	ss.mu.Unlock()
	if check {
		err = o.checkRevoked(c.Context(), p)
	}
	if err != nil {
		c.CloseWithError(err)
	}
}

// register adds ss to its subject's connections, unless it has ended.
func (ss *session) register() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended || ss.registered {
		return
	}
	ss.registered = true
	sub := ss.principal.Load().Subject
	o := ss.owner
	o.mu.Lock()
	defer o.mu.Unlock()
	if head := o.bySub[sub]; head != nil {
		ss.next, head.prev = head, ss
	}
	o.bySub[sub] = ss
}

func (s *Sessions) disconnect(c *wsguard.Conn) { sessionFrom(c.Context()).end() }

// end runs when the connection ends: it stops the timer and forgets ss.
func (ss *session) end() {
	ss.mu.Lock()
	ss.ended = true
	if ss.timer != nil {
		ss.timer.Stop()
	}
	registered := ss.registered
	ss.mu.Unlock()
	if !registered {
		return
	}
	sub := ss.principal.Load().Subject
	o := ss.owner
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case ss.prev != nil:
		ss.prev.next = ss.next
	case ss.next != nil:
		o.bySub[sub] = ss.next
	default:
		delete(o.bySub, sub)
	}
	if ss.next != nil {
		ss.next.prev = ss.prev
	}
	ss.prev, ss.next = nil, nil
}
