package errlog

import "errors"

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

// CodeOf classifies err: an [*Error] anywhere in the chain gives its code,
// and anything else is [Internal], the most conservative answer. An error
// is classified where it happens: the connection that reads EOF knows its
// peer left, the server's own timers know a deadline passed; a handler's
// failed backend call, its own timed-out or canceled context, means
// neither of these, whatever the error's type. CodeOf(nil) is 0, which is
// not a valid code.
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.code
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
