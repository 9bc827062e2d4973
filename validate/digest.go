package validate

import (
	"context"

	"github.com/wsguard/kit/wsguard"
)

// messageContext carries the message being handled down the chain, so
// that a typed handler, which gets a T instead of the message, can still
// name it by its digest. It is one allocation per message where a
// context.WithValue and a holder would be two.
type messageContext struct {
	context.Context
	m   *wsguard.Message
	typ string // the Router's registered type, for the audit line
}

type messageKey struct{}

// Value implements context.Context.
func (mc *messageContext) Value(key any) any {
	if key == (messageKey{}) {
		return mc
	}
	return mc.Context.Value(key)
}

// withMessage returns ctx carrying m, reusing the carrier an outer
// middleware ([Audit]) already made for the same message.
func withMessage(ctx context.Context, m *wsguard.Message) (context.Context, *messageContext) {
	if mc, ok := ctx.Value(messageKey{}).(*messageContext); ok && mc.m == m {
		return ctx, mc
	}
	mc := &messageContext{Context: ctx, m: m}
	return mc, mc
}

// Digest returns the hex digest (SHA-256 unless the server is configured
// otherwise) of the message being handled, as the server logs it, or ""
// outside a handler of this package. It is computed on the first call
// only, from the message as received (a [Signed] envelope included). Call
// it before the handler returns: the message buffer is then reused.
func Digest(ctx context.Context) string {
	if mc, ok := ctx.Value(messageKey{}).(*messageContext); ok {
		return mc.m.Digest()
	}
	return ""
}

// ID returns the correlation id of the message being handled
// ([wsguard.Message.ID]), or "" when it has none or outside a handler of
// this package. A handler puts it in its replies, so that a client with
// several requests in flight knows which one a reply answers:
//
//	c.SendJSON(ctx, struct {
//		Type string            `json:"type"`
//		ID   wsguard.MessageID `json:"id,omitempty"`
//	}{"joined", validate.ID(ctx)})
//
// Call it before the handler returns: the message buffer is then reused.
func ID(ctx context.Context) wsguard.MessageID {
	if mc, ok := ctx.Value(messageKey{}).(*messageContext); ok {
		return mc.m.ID()
	}
	return ""
}
