package errlog

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/coder/websocket"
)

// Error is an error with a [Code]. The wrapped error is internal detail for
// the log; a client only ever sees the public text.
type Error struct {
	code Code
	text string
	err  error
}

// NewError returns an error of the given code wrapping err, which may be nil.
func NewError(c Code, err error) *Error {
	return &Error{code: c, err: err}
}

// NewPublicError is [NewError] with a public text other than the code's own,
// for codes whose clients need to tell two cases apart ("token expired"
// versus "invalid token"). text must be a fixed string of at most 123 bytes,
// never derived from input.
func NewPublicError(c Code, text string, err error) *Error {
	if len(text) > 123 {
		text = text[:123]
	}
	return &Error{code: c, text: text, err: err}
}

// Code returns the error's code.
func (e *Error) Code() Code { return e.code }

// Text returns the public text: the close reason or HTTP body a client sees.
func (e *Error) Text() string {
	if e.text != "" {
		return e.text
	}
	return e.code.Text()
}

// Error returns the code's name followed by the internal detail.
func (e *Error) Error() string {
	if e.err == nil {
		return e.code.String()
	}
	return e.code.String() + ": " + e.err.Error()
}

// Unwrap returns the wrapped error.
func (e *Error) Unwrap() error { return e.err }

// CodeOf classifies err. An [*Error] anywhere in the chain gives its code;
// otherwise context and transport errors are mapped:
//
//   - context.DeadlineExceeded: [DeadlineExceeded]
//   - context.Canceled, a close frame from the peer, EOF, a closed or reset
//     connection (the peer is gone): [Canceled]
//   - websocket.ErrMessageTooBig: [TooLarge]
//
// Anything else is [Internal]. CodeOf(nil) is 0, which is not a valid code.
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.code
	}
	switch {
	case errors.Is(err, io.EOF):
		// The peer dropping the connection, the commonest error of all, is
		// told without walking the chain once for every other sentinel.
		return Canceled
	case errors.Is(err, websocket.ErrMessageTooBig):
		return TooLarge
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	case errors.Is(err, context.Canceled), PeerGone(err):
		return Canceled
	}
	return Internal
}

// TextOf returns the public text for err: the one given to
// [NewPublicError], else the text of its code.
func TextOf(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Text()
	}
	return CodeOf(err).Text()
}

// PeerGone reports whether err says the peer closed the connection: a close
// frame (any status), EOF, or a closed or reset socket.
func PeerGone(err error) bool {
	// A dropped connection, the commonest case, is the transport's EOF.
	if errors.Is(err, io.EOF) {
		return true
	}
	if _, ok := errors.AsType[websocket.CloseError](err); ok {
		return true
	}
	_, isNetErr := errors.AsType[net.Error](err)
	return isNetErr || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// NormalClosure reports whether err is the peer's own orderly close (status
// 1000 or 1001), which is not an error.
func NormalClosure(err error) bool {
	ce, _ := errors.AsType[websocket.CloseError](err)
	switch ce.Code {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return true
	}
	return false
}
