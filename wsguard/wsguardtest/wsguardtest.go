// Package wsguardtest runs a [wsguard.Handler] (a validate.Router, a
// handler with its middleware) in a test, without a network: a real
// [wsguard.Server] serves one connection over an in-memory pipe, a client
// sends the given messages, and [Run] returns what the server sent back,
// how the connection closed and what the server logged.
//
// It is for the application's handlers; this module's own tests of the
// transport edge use raw frames instead.
package wsguardtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	gws "github.com/gorilla/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// Message is one message the server sent.
type Message struct {
	Type wsguard.MessageType
	Data []byte
}

// Result is what one connection did.
type Result struct {
	// Sent holds the messages the server sent, in order.
	Sent []Message
	// Status and Reason are the close frame's: the server's own when it
	// closed the connection (4401, 1008, 1003 ...), or its answer to the
	// client's 1000 when every message was handled and the connection
	// stayed open. Status is 1006 (abnormal closure) when the server
	// dropped the connection without a close frame.
	Status wsguard.StatusCode
	Reason string
	// ClosedByServer reports whether the server ended the connection
	// itself, rather than answering the client's close.
	ClosedByServer bool
	// Log holds the server's log, one JSON object a line, at debug level,
	// unless the options gave the server a logger of their own.
	Log string
}

// Texts returns the data of the sent messages as strings.
func (r *Result) Texts() []string {
	s := make([]string, len(r.Sent))
	for i, m := range r.Sent {
		s[i] = string(m.Data)
	}
	return s
}

// Run serves h with a [wsguard.Server] built from opts (the defaults
// otherwise: every guard on), connects one client, sends msgs as text
// messages one after the other, then closes with 1000 and returns what
// happened. Options apply as they would in production: a handshake
// middleware (wsguard.WithHandshake) can put a subject or a principal into
// the connection's context, for example.
//
// The server handles a connection's messages in order and its replies are
// written before it reads the next message, so Sent holds every reply to
// msgs; a message a handler sends from another goroutine after the client's
// close has been read is not seen. Run ends when the connection has closed
// and the server has stopped, and returns an error only when the client
// could not connect or ctx ended. When ctx ends, the client drops the
// connection; a handler that never returns holds Run, as it would hold a
// server's drain.
func Run(ctx context.Context, h wsguard.Handler, msgs []string, opts ...wsguard.Option) (*Result, error) {
	var logs syncBuffer
	opts = append([]wsguard.Option{wsguard.WithLogger(errlog.NewLogger(&logs, slog.LevelDebug))}, opts...)
	srv := wsguard.New(h, opts...)

	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	hs := &http.Server{Handler: srv}
	served := make(chan struct{})
	go func() {
		_ = hs.Serve(ln)
		close(served)
	}()
	var once sync.Once
	stopServer := func() {
		once.Do(func() {
			// Shutdown waits for the connection's closing log line.
			_ = srv.Shutdown(context.WithoutCancel(ctx))
			_ = hs.Close()
			<-served
		})
	}
	defer stopServer()

	d := gws.Dialer{NetDialContext: ln.dial}
	c, resp, err := d.DialContext(ctx, "ws://wsguardtest.invalid/", nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("wsguardtest: the server refused the handshake with %s", resp.Status)
		}
		return nil, fmt.Errorf("wsguardtest: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()

	res := &Result{}
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			typ, b, err := c.ReadMessage()
			if err == nil {
				res.Sent = append(res.Sent, Message{Type: wsguard.MessageType(typ), Data: b})
				continue
			}
			res.Status, res.ClosedByServer = wsguard.StatusCode(gws.CloseAbnormalClosure), true
			if ce, ok := errors.AsType[*gws.CloseError](err); ok {
				res.Status, res.Reason = wsguard.StatusCode(ce.Code), ce.Text
				if ce.Code == gws.CloseNormalClosure && ce.Text == doneReason {
					// The server's answer to the client's close.
					res.Reason, res.ClosedByServer = "", false
				}
			}
			return
		}
	}()
	for _, m := range msgs {
		if c.WriteMessage(gws.TextMessage, []byte(m)) != nil {
			break // the server has closed: the reader says how
		}
	}
	_ = c.WriteMessage(gws.CloseMessage, gws.FormatCloseMessage(gws.CloseNormalClosure, doneReason))
	<-read
	stopServer()
	res.Log = logs.String()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("wsguardtest: %w", err)
	}
	return res, nil
}

// doneReason is the reason of the client's close, which the server's
// answer repeats: a close with it is not the server's own.
const doneReason = "wsguardtest: done"

// pipeListener hands the server the far ends of in-memory pipes.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- addrConn{server}:
		return addrConn{client}, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return testAddr }

// testAddr is the client's address as the server sees it: a documentation
// address (RFC 5737), so that the guards keyed by IP have one.
var testAddr = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1234}

// addrConn is a pipe end with an IP address on both sides.
type addrConn struct{ net.Conn }

func (addrConn) LocalAddr() net.Addr  { return testAddr }
func (addrConn) RemoteAddr() net.Addr { return testAddr }

// syncBuffer is the server's log, written from its goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
