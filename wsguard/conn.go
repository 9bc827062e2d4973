package wsguard

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/wsguard/kit/errlog"
)

// Conn is one guarded WebSocket connection. Its methods are safe to call
// from any goroutine.
type Conn struct {
	srv     *Server
	ws      *websocket.Conn
	nc      *frameConn // the hijacked socket under ws
	num     uint64     // the id's number, see ID
	ip      netip.Addr // the client's, see RemoteIP
	names   atomic.Pointer[connNames]
	ctx     context.Context
	cancel  context.CancelCauseFunc
	sub     atomic.Pointer[string]
	last    atomic.Int64 // unix nanoseconds of the last frame from the peer
	opened  int64        // unix nanoseconds of the upgrade, when observed
	limiter *rate.Limiter
	strikes int   // invalid messages in a row; serving goroutine only
	credit  int64 // unix nanoseconds until which a stall's credit raises the burst; serving goroutine only
	msg     Message

	end    atomic.Pointer[ending] // why the connection ends; the first reason wins
	closed chan struct{}          // closed once the winner has closed the transport

	timerMu sync.Mutex
	timer   *time.Timer // keepalive: one per connection, no goroutine
	stopped bool

	handling atomic.Bool // the handler is running: the peer is not idle

	writing atomic.Bool // a Send owns wtimer
	wtimer  *time.Timer // write timeout, reused by every Send that owns it
	wArmed  bool        // wtimer is armed; the owning Send only

	queue  sendQueue                  // messages given to Enqueue
	out    batchWriter                // the transport's writes to the socket
	groups memberships                // the groups joined, left when the connection ends
	values atomic.Pointer[connValues] // the application's, see values.go
}

// ending records why a connection ended, for its one log line.
type ending struct {
	err    error // nil when the application closed it
	status websocket.StatusCode
	digest string // of the message that caused it, if any
}

var (
	errBinary       = errors.New("binary message on a text endpoint")
	errUTF8         = errors.New("text message is not valid UTF-8")
	errTooLarge     = errors.New("message over the read limit")
	errWriteTimeout = errors.New("write timed out: the client is not reading")
	errClosed       = errors.New("connection closed")
)

// ErrClosed is returned by [Conn.Send] and its variants when the connection
// has ended, for whatever reason, or ends during the write. It carries no
// errlog code: the connection it was sent on has already logged why it
// ended, and a handler that returns it about another connection has made an
// internal error ([errlog.Internal]) of its own.
var ErrClosed = errors.New("wsguard: connection closed")

// droppedError marks why a connection ends without a close handshake: the
// peer left (EOF, a reset, its own close frame, a message cut short) or a
// write could not finish. Only this connection's own read loop and writes
// make one, so an error of the same type from anywhere else (a handler's
// backend call, another connection) is never taken for this peer leaving.
type droppedError struct{ err error }

func (e *droppedError) Error() string { return e.err.Error() }
func (e *droppedError) Unwrap() error { return e.err }

// dropped returns an error of code that ends the connection without a close
// handshake.
func dropped(code errlog.Code, err error) error {
	return errlog.NewError(code, &droppedError{err})
}

func (s *Server) newConn(r *http.Request) *Conn {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	c := &Conn{
		srv:     s,
		num:     s.nextID.Add(1),
		ip:      ClientIP(r),
		ctx:     ctx,
		cancel:  cancel,
		limiter: rate.NewLimiter(rate.Limit(s.cfg.messageRate), s.cfg.messageBurst),
		closed:  make(chan struct{}),
	}
	c.msg.newHash = s.cfg.newHash
	if sub := subjectOf(ctx); sub != nil && *sub != "" {
		c.sub.Store(sub)
	}
	c.touch()
	return c
}

// ID returns the connection's id, as logged under "conn".
func (c *Conn) ID() string { return c.named().id }

// RemoteIP returns the client's IP address, as resolved by the guards.
func (c *Conn) RemoteIP() string { return c.named().remote }

// connNames are a connection's id and client IP as logged. They are
// formatted when first asked for: most connections end without a log line
// or a call that needs them, and formatting both at every handshake cost
// two to three allocations.
type connNames struct{ id, remote string }

func (c *Conn) named() *connNames {
	if n := c.names.Load(); n != nil {
		return n
	}
	n := &connNames{id: c.srv.connID(c.num), remote: c.ip.String()}
	if c.names.CompareAndSwap(nil, n) {
		return n
	}
	return c.names.Load()
}

// Subprotocol returns the negotiated application subprotocol, or "".
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// Context returns the connection's context: it carries the values of the
// upgrade request and is canceled when the connection ends.
func (c *Conn) Context() context.Context { return c.ctx }

// Subject returns the authenticated subject logged with this connection, or "".
func (c *Conn) Subject() string {
	if p := c.sub.Load(); p != nil {
		return *p
	}
	return ""
}

// SetSubject sets the subject logged with this connection, for
// authentication that completes after the upgrade. A [SubjectConnLimit]
// guarding the connection counts it under sub from then on; when sub is
// over that cap, the connection closes with 4429
// (errlog.ResourceExhausted), and its Send fails from then on.
func (c *Conn) SetSubject(sub string) {
	c.sub.Store(&sub)
	c.countSubject(sub)
}

// Send writes one message and returns once the socket has taken it,
// bounded by ctx and the write timeout. A client that does not take the
// message within the write timeout is disconnected
// (errlog.DeadlineExceeded). A write that fails, or that ctx ends before it
// is done, leaves the transport unusable: the connection ends, and Send
// returns an error that wraps [ErrClosed], as it does on a connection that
// has already ended. A ctx that has ended before Send is called writes
// nothing and leaves the connection as it is: Send returns ctx's error.
//
// So ctx is this connection's to end: pass the handler's ctx (or
// [Conn.Context]) to Send on the connection being served. To write to
// other connections, broadcast with a [Group] or call [Conn.Enqueue],
// which takes no ctx and never waits on the client: a Send to another
// connection with a request-scoped deadline would end that connection
// when the deadline passes mid-write, and a slow client would hold the
// sender for up to the write timeout.
func (c *Conn) Send(ctx context.Context, typ MessageType, p []byte) error {
	if c.end.Load() != nil {
		// The connection's own context ends with it: that is ErrClosed.
		return fmt.Errorf("wsguard: send: %w", ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wsguard: send: nothing written: %w", err)
	}
	var err error
	if c.writing.CompareAndSwap(false, true) {
		err = c.sendAlone(ctx, typ, p)
	} else {
		err = c.sendConcurrent(ctx, typ, p)
	}
	if err == nil {
		if o := c.srv.obs; o != nil {
			o.Observe(c.ctx, Event{Kind: EventMessageOut, Size: len(p), Conn: c})
		}
		return nil
	}
	if c.end.Load() == nil {
		// A socket that failed means the peer is gone; a ctx that ran out
		// mid-write means the client did not take the message in time.
		code := errlog.Canceled
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			code = errlog.DeadlineExceeded
		}
		c.fail(dropped(code, fmt.Errorf("write failed: %w", err)), nil)
	}
	// The detail is flattened: the ending's code belongs to this connection,
	// not to the caller, which may be serving another one.
	return fmt.Errorf("wsguard: send: %w (%v)", ErrClosed, err)
}

// sendAlone is the common case, one Send at a time: the write is tried
// first without waiting, and only a write that has to wait for the client
// arms the connection's reusable write timer ([Conn.armWriteTimer]), so
// that neither a context nor a timer is allocated, or a timer even armed,
// per message. A ctx canceled only with the connection (the handler's ctx)
// is not watched per write: the connection ends before that ctx does.
func (c *Conn) sendAlone(ctx context.Context, typ MessageType, p []byte) error {
	defer c.writing.Store(false)
	if ctx.Done() == c.ctx.Done() {
		ctx = context.Background()
	}
	err := c.write(ctx, typ, p, true)
	if c.wArmed {
		c.wtimer.Stop()
		c.wArmed = false
	}
	return err
}

// armWriteTimer arms the write timeout of the Send that owns the timer,
// once its write has to wait for the client. It runs on that Send's
// goroutine, inside its write.
func (c *Conn) armWriteTimer() {
	if c.wtimer == nil {
		c.wtimer = time.AfterFunc(c.srv.cfg.writeTimeout, c.writeTimedOut)
	} else {
		c.wtimer.Reset(c.srv.cfg.writeTimeout)
	}
	c.wArmed = true
}

// sendConcurrent serves a Send that overlaps another: it waits for the
// transport's write lock under a deadline of its own.
func (c *Conn) sendConcurrent(ctx context.Context, typ MessageType, p []byte) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := time.AfterFunc(c.srv.cfg.writeTimeout, func() {
		c.fail(dropped(errlog.DeadlineExceeded, errWriteTimeout), nil)
		cancel()
	})
	err := c.write(ctx, typ, p, false)
	t.Stop()
	return err
}

// write writes p as one frame; timed, it arms the write timer if it has
// to wait. A ctx that ends before the write is done cuts the socket: a
// frame cut short leaves nothing else to write.
func (c *Conn) write(ctx context.Context, typ MessageType, p []byte, timed bool) error {
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, c.cutSocket)
		defer stop()
	}
	err := c.out.frame(byte(typ), p, timed)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

func (c *Conn) cutSocket() { _ = c.nc.Close() }

// writeControl writes a ping or a pong within the write timeout. A write
// that fails ends the connection; it is never a close handshake, which
// would wait for the reader that may be the caller.
func (c *Conn) writeControl(op byte, p []byte) {
	t := time.AfterFunc(c.srv.cfg.writeTimeout, c.writeTimedOut)
	err := c.out.control(op, p)
	t.Stop()
	if err != nil {
		c.fail(dropped(errlog.Canceled, fmt.Errorf("write failed: %w", err)), nil)
	}
}

// writeTimedOut runs on the write timer: the client has not taken a message
// within the write timeout. Cutting the socket also ends a write that is
// stuck while another reason is already closing the connection.
func (c *Conn) writeTimedOut() {
	c.fail(dropped(errlog.DeadlineExceeded, errWriteTimeout), nil)
	_ = c.nc.Close()
}

// SendText sends a text message.
func (c *Conn) SendText(ctx context.Context, s string) error {
	return c.Send(ctx, MessageText, []byte(s))
}

// SendJSON sends v encoded as JSON in a text message.
func (c *Conn) SendJSON(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wsguard: send: %w", err)
	}
	return c.Send(ctx, MessageText, b)
}

// Close closes the connection with the given status and reason; never put
// client input or error detail in the reason. A reason over the 123 bytes
// a close frame holds is cut at a character boundary. A status that may
// not be sent (below 1000, 1004-1006, 1015, or over 4999) closes with
// 1011 and Close returns an error naming it. Close waits for the close
// handshake, at most a few seconds. Closing an already closing connection
// does nothing.
func (c *Conn) Close(code StatusCode, reason string) error {
	var bad error
	if code < 0 || code > 0xffff || !validCloseCode(uint16(code)) {
		bad = fmt.Errorf("wsguard: close status %d may not be sent: closed with 1011", code)
		code, reason = websocket.StatusInternalError, errlog.Internal.Text()
	}
	if !c.end.CompareAndSwap(nil, &ending{status: code}) {
		return nil
	}
	c.cancel(errClosed)
	err := c.closeHandshake(code, cutReason(reason))
	close(c.closed)
	if bad != nil {
		return bad
	}
	return err
}

// maxCloseReason is what a close frame's payload holds after its status.
const maxCloseReason = maxControlPayload - 2

// cutReason cuts reason to maxCloseReason bytes without splitting a
// character.
func cutReason(reason string) string {
	if len(reason) <= maxCloseReason {
		return reason
	}
	n := maxCloseReason
	for n > 0 && !utf8.RuneStart(reason[n]) {
		n--
	}
	return reason[:n]
}

// closeHandshakeTimeout bounds a close handshake. The transport's own
// timeouts do not cover a peer that announced a long frame and stopped
// sending: it would discard the rest of that frame forever.
const closeHandshakeTimeout = 5 * time.Second

func (c *Conn) closeHandshake(code websocket.StatusCode, reason string) error {
	t := time.AfterFunc(closeHandshakeTimeout, func() { _ = c.nc.Close() })
	defer t.Stop()
	return c.ws.Close(code, reason)
}

// CloseWithError ends the connection for err as its errlog code says: a
// close handshake with the code's close status and public text (an
// Unauthenticated error closes with 4401, for example), and err's detail in
// the connection's closing log line only. Only the first call to close a
// connection acts.
func (c *Conn) CloseWithError(err error) {
	c.fail(err, nil)
}

// fail ends the connection for err: with a close handshake carrying the
// code's status and public text or, when err says the socket is unusable
// ([droppedError]), by dropping it. Only the first call acts; m, when
// given, is the message that caused err and is named in the log by its
// digest.
func (c *Conn) fail(err error, m *Message) {
	if c.end.Load() != nil {
		c.failedLate(err)
		return
	}
	code := errlog.CodeOf(err)
	e := &ending{err: err, status: websocket.StatusCode(code.CloseStatus())}
	d, isDropped := errors.AsType[*droppedError](err)
	switch {
	case isDropped:
		e.status = websocket.StatusAbnormalClosure
		if ce, ok := errors.AsType[websocket.CloseError](d.err); ok {
			e.status = ce.Code
		}
	case e.status == 0: // a recoverable code used as a reason to close
		e.status = websocket.StatusPolicyViolation
	}
	if m != nil {
		e.digest = m.Digest()
	}
	if !c.end.CompareAndSwap(nil, e) {
		c.failedLate(err)
		return
	}
	// The handler and hooks waiting on the context learn now, not when
	// the close handshake is over.
	c.cancel(err)
	if isDropped {
		_ = c.ws.CloseNow()
	} else {
		_ = c.closeHandshake(e.status, errlog.TextOf(err))
	}
	close(c.closed)
}

// failedLate logs err, which came after the connection had already ended
// for another reason, when it is a failure of its own (a handler's panic
// or internal error): the closing line names the first reason only.
func (c *Conn) failedLate(err error) {
	if errlog.CodeOf(err) != errlog.Internal || errors.Is(err, ErrClosed) {
		return
	}
	errlog.Log(c.ctx, c.srv.log, "handler failed after the connection ended", err, c.logAttrs()...)
}

// serve runs the message loop on the serving goroutine until the
// connection ends, then logs its one closing line.
func (c *Conn) serve() {
	c.startTimer()
	if err := c.open(); err != nil {
		c.fail(err, nil)
	} else {
		c.loop()
	}
	c.finish()
}

// open runs the connect hooks; a panic in one is an internal error.
func (c *Conn) open() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errlog.NewError(errlog.Internal, fmt.Errorf("panic in connect hook: %v\n%s", p, debug.Stack()))
		}
	}()
	for _, f := range c.srv.cfg.onConnect {
		if err := f(c.ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (c *Conn) finish() {
	<-c.closed
	c.stopTimer()
	e := c.end.Load()
	cause := e.err
	if cause == nil {
		cause = errClosed
	}
	c.cancel(cause)
	c.leaveGroups()
	for _, f := range c.srv.cfg.onDisconnect {
		c.disconnect(f)
	}
	c.clearValues()
	if c.srv.obs != nil {
		c.observeClosed(e)
	}

	level := slog.LevelDebug
	if e.err != nil {
		level = errlog.CodeOf(e.err).Level()
	}
	if !c.srv.log.Enabled(c.ctx, level) {
		return
	}
	attrs := append(c.logAttrs(), slog.Int(errlog.KeyClose, int(e.status)))
	if e.digest != "" {
		attrs = append(attrs, slog.String(errlog.KeyPayload, e.digest))
	}
	if e.err == nil {
		c.srv.log.LogAttrs(c.ctx, level, "connection closed", attrs...)
		return
	}
	errlog.Log(c.ctx, c.srv.log, "connection closed", e.err, attrs...)
}

// disconnect runs the disconnect hook f. The connection has already ended
// for its own reason, so a panic in f has a log line of its own.
func (c *Conn) disconnect(f func(*Conn)) {
	defer func() {
		if p := recover(); p != nil {
			err := errlog.NewError(errlog.Internal, fmt.Errorf("panic in disconnect hook: %v\n%s", p, debug.Stack()))
			errlog.Log(c.ctx, c.srv.log, "disconnect hook failed", err, c.logAttrs()...)
		}
	}()
	f(c)
}

// logAttrs returns the attributes that name the connection in its log
// lines, with room for two more.
func (c *Conn) logAttrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 5)
	n := c.named()
	attrs = append(attrs, slog.String(errlog.KeyConn, n.id), slog.String(errlog.KeyRemote, n.remote))
	if sub := c.Subject(); sub != "" {
		attrs = append(attrs, slog.String(errlog.KeySub, sub))
	}
	return attrs
}

func (c *Conn) loop() {
	for {
		typ, err := c.nc.next()
		if err != nil {
			c.readFailed(err)
			return
		}
		if !c.next(typ) {
			return
		}
	}
}

// next reads and handles the message whose first frame has arrived, of
// type typ, and reports whether the connection goes on. It is apart from
// loop so that its frame is off the stack while an idle connection waits
// (see [Server.accept]).
func (c *Conn) next(typ MessageType) bool {
	s := c.srv
	// The message was charged to the rate bucket as its first frame
	// arrived ([frameConn]).
	now := time.Now()
	c.last.Store(now.UnixNano())
	if c.credit != 0 && now.UnixNano() >= c.credit {
		c.limiter.SetBurstAt(now, s.cfg.messageBurst)
		c.credit = 0
	}
	if typ == MessageBinary && !s.cfg.binary {
		c.fail(errlog.NewError(errlog.Unsupported, errBinary), nil)
		return false
	}
	buf := s.getBuf()
	data, err := c.nc.read((*buf)[:0], s.cfg.readLimit)
	*buf = data[:0]
	if err == nil && int64(len(data)) > s.cfg.readLimit {
		err = errlog.NewError(errlog.TooLarge, errTooLarge)
	}
	if err != nil {
		// Nothing of a message that did not arrive whole is named: c.msg
		// still holds the last one handled.
		c.readFailed(err)
	} else {
		c.msg.reset(typ, data)
		// The peer is not idle while the handler works: nothing reads its
		// pongs meanwhile.
		c.handling.Store(true)
		if s.obs == nil {
			err = c.handle()
		} else {
			err = c.observedHandle()
		}
		c.handling.Store(false)
		c.touch()
		if err == nil {
			c.creditStall(now)
		} else {
			var m *Message
			if len(data) > 0 {
				m = &c.msg
			}
			c.fail(err, m)
		}
		c.msg.Data = nil // the buffer goes back to the pool
	}
	s.putBuf(buf)
	return err == nil
}

// readFailed ends the connection for a failed read, classified
// ([classifyRead]); a rate limit is reported as one. When a close frame
// is next, the transport reads it and answers, and the connection ends as
// that says.
func (c *Conn) readFailed(err error) {
	if err == errCloseFrame {
		_, _, err = c.ws.Reader(context.Background())
		if err == nil { // the frame checks let no data frame through here
			err = errors.New("the transport read a message where a close frame was")
		}
	}
	err = classifyRead(err)
	if o := c.srv.obs; o != nil && errlog.CodeOf(err) == errlog.ResourceExhausted {
		o.Observe(c.ctx, Event{Kind: EventLimited, Code: errlog.ResourceExhausted, Reason: LimitMessageRate, Err: err, Conn: c})
	}
	c.fail(err, nil)
}

// maxStallCredit bounds the stall a client is credited for.
const maxStallCredit = 10 * time.Second

// creditStall keeps a client from being charged for the server's own
// stall. While a handler holds the serving goroutine, the client's
// messages wait in the socket, and once it returns they are read in a
// burst that the message rate would refuse, though the client sent them
// at its pace. When the handler of the message read at start took long
// enough to let more than half the burst pile up, the burst is raised by
// what the rate allows over that time (at most maxStallCredit's worth),
// from start: the waiting messages are then charged as if read when they
// came. The raise lasts as long as the stall did, then the burst is back
// to the configured one. A client gains nothing it could not have sent
// at the rate.
func (c *Conn) creditStall(start time.Time) {
	cfg := &c.srv.cfg
	d := min(time.Since(start), maxStallCredit)
	extra := int(d.Seconds() * cfg.messageRate)
	if extra < max(cfg.messageBurst/2, 1) {
		return
	}
	c.limiter.SetBurstAt(start, cfg.messageBurst+extra)
	c.credit = start.Add(2 * d).UnixNano()
}

// classifyRead classifies an error from reading this connection, where
// only this connection's transport can have made it. An error with an
// errlog code comes from the frame checks ([frameConn]); one that says the
// peer closed or dropped the socket ends the connection without a close
// handshake; anything else is the transport refusing a frame that those
// checks let through.
func classifyRead(err error) error {
	if _, ok := errors.AsType[*errlog.Error](err); ok {
		return err
	}
	if err == errCut {
		return dropped(errlog.Canceled, err)
	}
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return errlog.NewError(errlog.TooLarge, err)
	}
	if _, ok := errors.AsType[websocket.CloseError](err); ok || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) {
		return dropped(errlog.Canceled, err)
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return dropped(errlog.Canceled, err)
	}
	return errlog.NewError(errlog.Protocol, err)
}

// handle checks and dispatches the current message. It returns only
// errors that end the connection; recoverable ones are answered here.
func (c *Conn) handle() error {
	if c.msg.Type == MessageText && !utf8.Valid(c.msg.Data) {
		return errlog.NewError(errlog.InvalidPayload, errUTF8)
	}
	err := c.dispatch()
	if err == nil {
		c.strikes = 0
		return nil
	}
	if errlog.CodeOf(err) != errlog.InvalidArgument {
		return err
	}
	c.strikes++
	if c.strikes >= c.srv.cfg.maxInvalid {
		return errlog.NewError(errlog.PolicyViolation, fmt.Errorf("%d invalid messages in a row, last: %w", c.strikes, err))
	}
	errlog.Log(c.ctx, c.srv.log, "message rejected", err,
		append(c.logAttrs(), slog.String(errlog.KeyPayload, c.msg.Digest()))...)
	reply, merr := replyTo(err, &c.msg)
	if merr != nil {
		return errlog.NewError(errlog.Internal, merr)
	}
	return c.Send(c.ctx, MessageText, reply)
}

func (c *Conn) dispatch() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errlog.NewError(errlog.Internal, fmt.Errorf("panic in message handler: %v\n%s", p, debug.Stack()))
		}
	}()
	return c.srv.handler.ServeMessage(c.ctx, c, &c.msg)
}

func (c *Conn) touch() { c.last.Store(time.Now().UnixNano()) }

func (c *Conn) startTimer() {
	if c.srv.cfg.idleTimeout <= 0 && c.srv.cfg.pingInterval <= 0 {
		return
	}
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	c.timer = time.AfterFunc(c.nextTick(0), c.tick)
}

func (c *Conn) stopTimer() {
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	c.stopped = true
	if c.timer != nil {
		c.timer.Stop()
	}
}

// tick runs on the keepalive timer: it closes a connection that has been
// silent past the idle timeout, and pings one that has been quiet for a
// ping interval.
func (c *Conn) tick() {
	cfg := &c.srv.cfg
	quiet := time.Since(time.Unix(0, c.last.Load()))
	// While the handler runs nothing reads the peer's frames: it is not
	// judged idle, and a ping would wait for a pong no one can read.
	handling := c.handling.Load()
	if cfg.idleTimeout > 0 && quiet >= cfg.idleTimeout && !handling {
		c.fail(errlog.NewError(errlog.Idle, fmt.Errorf("no message or pong from the peer for %v", quiet.Round(time.Millisecond))), nil)
		return
	}
	c.timerMu.Lock()
	if c.stopped {
		c.timerMu.Unlock()
		return
	}
	c.timer.Reset(c.nextTick(quiet))
	c.timerMu.Unlock()

	if cfg.pingInterval > 0 && quiet >= cfg.pingInterval && !handling {
		c.ping()
	}
}

// ping sends the keepalive ping. Only the pong that answers it shows that
// the peer is there ([frameConn] calls touch when it arrives): the peer's
// own pings and unsolicited pongs cost it nothing to send, so they do not
// keep a silent connection open, and its payload is random, so that a
// client that does not read cannot answer it. A missing pong is caught by
// the idle check; nothing waits for it. One ping is out at a time, so that
// a pong slower than the ping interval still answers it.
func (c *Conn) ping() {
	v := rand.Uint64() | 1 // 0 is no ping
	if !c.nc.ping.CompareAndSwap(0, v) {
		return
	}
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], v)
	c.writeControl(opPing, p[:])
}

// nextTick returns when the keepalive timer must next fire, given how long
// the peer has been quiet.
func (c *Conn) nextTick(quiet time.Duration) time.Duration {
	cfg := &c.srv.cfg
	d := time.Duration(math.MaxInt64)
	if cfg.idleTimeout > 0 {
		d = cfg.idleTimeout - quiet
		if d <= 0 { // past it only while the handler runs: look again later
			d = cfg.idleTimeout
		}
	}
	if cfg.pingInterval > 0 {
		p := cfg.pingInterval - quiet
		if p <= 0 {
			p = cfg.pingInterval
		}
		d = min(d, p)
	}
	return max(d, time.Millisecond)
}

type subjectKey struct{}

// WithSubject returns ctx carrying the authenticated subject, which the
// server logs with every line about the connection. Authentication
// middleware calls it before the upgrade.
func WithSubject(ctx context.Context, sub string) context.Context {
	return &subjectContext{Context: ctx, sub: sub}
}

// subjectContext carries a subject as context.WithValue would, in one
// allocation instead of two (the context's, and the string's in an
// interface), and lends the connection its subject without a copy.
type subjectContext struct {
	context.Context
	sub string // never changed: a connection holds a pointer to it
}

// Value implements context.Context.
func (c *subjectContext) Value(key any) any {
	if _, ok := key.(subjectKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// subjectOf returns the subject stored by [WithSubject], or nil.
func subjectOf(ctx context.Context) *string {
	if c, ok := ctx.Value(subjectKey{}).(*subjectContext); ok {
		return &c.sub
	}
	return nil
}

// SubjectFrom returns the subject stored by [WithSubject], or "".
func SubjectFrom(ctx context.Context) string {
	if sub := subjectOf(ctx); sub != nil {
		return *sub
	}
	return ""
}
