package wsguard

import (
	"encoding/json"
	"errors"

	"github.com/wsguard/kit/errlog"
)

// ErrorReply is the message a client receives for a recoverable
// (errlog.InvalidArgument) error:
//
//	{"type":"error","code":"invalid_argument","message":"invalid argument"}
//
// It never echoes what the client sent.
type ErrorReply struct {
	Type    string       `json:"type"`
	Code    string       `json:"code"`
	Message string       `json:"message,omitempty"`
	Offset  *int64       `json:"offset,omitempty"`
	Fields  []FieldError `json:"fields,omitempty"`
	// ID is the correlation id of the message the reply is about, when it
	// had one ([Message.ID]).
	ID MessageID `json:"id,omitempty"`
}

// FieldError names one field that failed a rule.
type FieldError struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
	Param string `json:"param,omitempty"`
}

// Replier is implemented by errors that want a more specific reply than the
// code's name and text, such as a list of failed fields.
type Replier interface {
	error
	Reply() ErrorReply
}

// ReplyOf returns the reply a client gets for err: the one err's
// [Replier] gives, or the code's name and public text. Its Type is always
// "error". An HTTP handler answers with it, encoded as JSON, to give a
// client the same shape on both sides of the upgrade.
func ReplyOf(err error) ErrorReply {
	r := ErrorReply{Code: errlog.CodeOf(err).String(), Message: errlog.TextOf(err)}
	if rp, ok := errors.AsType[Replier](err); ok {
		r = rp.Reply()
	}
	r.Type = "error"
	return r
}

func replyFor(err error) ([]byte, error) {
	return json.Marshal(ReplyOf(err))
}

// replyTo is the reply to the message m for err, with m's id.
func replyTo(err error, m *Message) ([]byte, error) {
	r := ReplyOf(err)
	r.ID = m.ID()
	return json.Marshal(r)
}
