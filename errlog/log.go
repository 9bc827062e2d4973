package errlog

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Attribute keys of the log lines written by this module.
const (
	KeyConn    = "conn"           // connection id
	KeyRemote  = "remote"         // client IP address
	KeySub     = "sub"            // authenticated subject, when known
	KeyCode    = "code"           // the error's Code
	KeyClose   = "close"          // WebSocket close status sent
	KeyStatus  = "status"         // HTTP status sent
	KeyErr     = "err"            // internal detail
	KeyPayload = "payload_sha256" // digest of the message that caused the error
	KeyOrigin  = "origin"         // Origin header, escaped
	KeyUA      = "user_agent"     // User-Agent header, escaped
	KeyReason  = "reason"         // the peer's close reason, escaped
)

// Log writes one line for err at the level of its code, with the code, the
// internal detail as [ErrAttr] bounds it, and the given attributes. A nil
// logger means slog.Default().
//
// A nil err is a caller's mistake, not a success to stay quiet about: the
// line is written at the level of [Internal], with the err attribute
// "errlog.Log called with a nil error".
func Log(ctx context.Context, l *slog.Logger, msg string, err error, attrs ...slog.Attr) {
	l = OrDefault(l)
	if err == nil {
		err = NewError(Internal, errNilError)
	}
	c := CodeOf(err)
	if !l.Enabled(ctx, c.Level()) {
		return
	}
	all := make([]slog.Attr, 0, len(attrs)+2)
	all = append(all, slog.String(KeyCode, c.String()), ErrAttr(err))
	all = append(all, attrs...)
	l.LogAttrs(ctx, c.Level(), msg, all...)
}

var errNilError = errors.New("errlog.Log called with a nil error")

// maxErrText bounds the err attribute. It is larger than the bound of an
// [Untrusted] string because an error's text chains the detail of every
// layer it went through, and a recovered panic's carries its stack, which
// must reach the frame that panicked.
const maxErrText = 4 << 10

// ErrAttr returns the attribute [KeyErr] for err. Error texts often carry
// client bytes (a transport quotes the header it refused), so the text is
// cut to its first 4 KiB, marked "..." when cut, and control characters,
// other non-printable runes and invalid UTF-8 in it are escaped as in a Go
// string literal: one error is one bounded line whatever the client sent.
// Quotes and backslashes are kept, so that detail already quoted with
// [Escape] reads the same. The text is built only when a handler formats
// the line. A nil err logs as "<nil>".
func ErrAttr(err error) slog.Attr {
	return slog.Any(KeyErr, errText{err})
}

// errText is an error as the err attribute logs it.
type errText struct{ err error }

// LogValue implements slog.LogValuer.
func (e errText) LogValue() slog.Value {
	if e.err == nil {
		return slog.StringValue("<nil>")
	}
	return slog.StringValue(escapeText(e.err.Error(), maxErrText))
}

// escapeText cuts s to n bytes and escapes what could forge or garble a log
// line: control characters, non-printable runes and invalid UTF-8.
func escapeText(s string, n int) string {
	cut := len(s) > n
	if cut {
		s = s[:n]
	}
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		if cut {
			return s + "..."
		}
		return s
	}
	b := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\x`...)
			b = append(b, hexDigits[s[i]>>4], hexDigits[s[i]&0xf])
		case !strconv.IsPrint(r):
			q := strconv.AppendQuoteRune(nil, r)
			b = append(b, q[1:len(q)-1]...)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	if cut {
		b = append(b, "..."...)
	}
	return string(b)
}

const hexDigits = "0123456789abcdef"

// OrDefault returns l, or slog.Default() when l is nil.
func OrDefault(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// Secret is a credential (a token, a cookie, a key). It logs and prints as
// REDACTED; convert it with string(s) where the value itself is needed.
type Secret string

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// String implements fmt.Stringer so that %v and %s do not leak it either.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer for %#v.
func (Secret) GoString() string { return redacted }

const redacted = "REDACTED"

// Untrusted is a string supplied by a client (an Origin, a User-Agent, a close
// reason). It logs with control characters and invalid UTF-8 escaped, cut to
// 256 bytes, so that it cannot forge log lines or flood them.
type Untrusted string

const maxUntrusted = 256

// LogValue implements slog.LogValuer.
func (u Untrusted) LogValue() slog.Value { return slog.StringValue(Escape(string(u))) }

// Escape returns s with control characters and invalid UTF-8 escaped as in a
// Go string literal (without the quotes), cut to 256 bytes of input.
func Escape(s string) string {
	cut := len(s) > maxUntrusted
	if cut {
		s = s[:maxUntrusted]
	}
	if !needsEscape(s) {
		if cut {
			return s + "..."
		}
		return s
	}
	q := strconv.Quote(s)
	q = q[1 : len(q)-1]
	if cut {
		q += "..."
	}
	return q
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b == 0x7f || b >= 0x80 || b == '\\' || b == '"' {
			return true
		}
	}
	return false
}

// sensitiveKeys are attribute keys whose values are always redacted by
// [ReplaceAttr], whatever their type.
var sensitiveKeys = map[string]bool{
	"authorization":          true,
	"proxy-authorization":    true,
	"cookie":                 true,
	"set-cookie":             true,
	"token":                  true,
	"access_token":           true,
	"id_token":               true,
	"refresh_token":          true,
	"jwt":                    true,
	"password":               true,
	"secret":                 true,
	"key":                    true,
	"sec-websocket-protocol": true,
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr backstop: it redacts
// attributes whose key names a credential, and string values shaped like a
// JWT, wherever they come from. Structural redaction with [Secret] is the
// first line; this catches what a caller logged by hand.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	if sensitiveKeys[strings.ToLower(a.Key)] {
		return slog.String(a.Key, redacted)
	}
	if a.Value.Kind() == slog.KindString && looksLikeJWT(a.Value.String()) {
		return slog.String(a.Key, redacted)
	}
	return a
}

// looksLikeJWT reports whether s contains a compact JWS: a base64url JSON
// header ("eyJ") followed by two more dot-separated parts.
func looksLikeJWT(s string) bool {
	i := strings.Index(s, "eyJ")
	if i < 0 {
		return false
	}
	return strings.Count(s[i:], ".") >= 2
}

// NewLogger returns a JSON-lines logger writing to w at the given minimum
// level, with [ReplaceAttr] installed.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: ReplaceAttr}))
}

// OpenFile opens (appending, creating with mode 0600) a JSON-lines log file
// and returns a logger writing to it, as [NewLogger] does. The caller closes
// the returned file when done.
func OpenFile(path string, level slog.Leveler) (*slog.Logger, io.Closer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	return NewLogger(f, level), f, nil
}
