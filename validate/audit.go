package validate

import (
	"context"
	"log/slog"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// Attribute keys of the audit line, beside errlog's conn, sub, code and
// payload_sha256.
const (
	KeyType  = "type"  // the Router's message type, when one was routed
	KeyFrame = "frame" // "text" or "binary"
	KeySize  = "size"  // bytes as received
)

// Audit returns middleware that logs one line per message at info level
// ("message"): the connection id, the subject, the frame type, the
// Router's message type when the message reached one, the size, the
// digest, and the error code when the handler failed. It never logs the
// content. Put it first in the chain so that the line describes the
// message as received. A nil logger means the connection's
// (wsguard.LoggerFrom: the server's); pass one to keep the audit lines
// apart.
//
// A message the handler refuses as errlog.InvalidArgument has no line
// here: the server answers it with an error reply and logs it itself, on
// its own logger ("message rejected", or the closing line of a connection
// with too many invalid messages in a row), with the same connection,
// subject, code and digest, so that one message makes one line.
func Audit(l *slog.Logger) wsguard.Middleware {
	return func(next wsguard.Handler) wsguard.Handler {
		return wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) (err error) {
			l := l
			if l == nil {
				l = wsguard.LoggerFrom(ctx)
			}
			if !l.Enabled(ctx, slog.LevelInfo) {
				return next.ServeMessage(ctx, c, m)
			}
			ctx, mc := withMessage(ctx, m)
			size, frame := len(m.Data), frameName(m.Type)
			done := false
			// Deferred so that a message whose handler panics is logged
			// too; the panic goes on to the server.
			defer func() {
				if done && errlog.CodeOf(err) == errlog.InvalidArgument {
					return
				}
				attrs := make([]slog.Attr, 0, 8)
				attrs = append(attrs, slog.String(errlog.KeyConn, c.ID()))
				if sub := c.Subject(); sub != "" {
					attrs = append(attrs, slog.String(errlog.KeySub, sub))
				}
				attrs = append(attrs, slog.String(KeyFrame, frame))
				if mc.typ != "" {
					attrs = append(attrs, slog.String(KeyType, mc.typ))
				}
				attrs = append(attrs, slog.Int(KeySize, size), slog.String(errlog.KeyPayload, m.Digest()))
				switch {
				case !done:
					attrs = append(attrs, slog.String(errlog.KeyCode, errlog.Internal.String()))
				case err != nil:
					attrs = append(attrs, slog.String(errlog.KeyCode, errlog.CodeOf(err).String()))
				}
				l.LogAttrs(ctx, slog.LevelInfo, "message", attrs...)
			}()
			err = next.ServeMessage(ctx, c, m)
			done = true
			return err
		})
	}
}

func frameName(t wsguard.MessageType) string {
	if t == wsguard.MessageBinary {
		return "binary"
	}
	return "text"
}
