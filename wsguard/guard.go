package wsguard

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/wsguard/kit/errlog"
)

// GuardOption configures a pre-upgrade guard that reads a clock
// ([HandshakeLimit]); the other guards take no options.
//
// A guard has no logger or observer of its own: its Handler logs its one
// line per refusal to [LoggerFrom] and reports to [ObserverFrom] of the
// request, which are the Server's for a guard installed on one
// ([WithHandshake]) and [Instrument]'s for guards composed by hand.
type GuardOption func(*guardConfig)

type guardConfig struct {
	now func() time.Time
}

func newGuardConfig(opts []GuardOption) guardConfig {
	var c guardConfig
	for _, o := range opts {
		o(&c)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// WithGuardClock sets the clock a guard reads; nil means time.Now. Rate
// limits are computed from the time passed in, so a test can step a fake
// clock instead of sleeping.
func WithGuardClock(now func() time.Time) GuardOption {
	return func(c *guardConfig) { c.now = now }
}

// Reject answers a refused handshake for err and logs one line about it.
//
// The status is errlog.CodeOf(err).HTTPStatus() and the body is the code's
// public text (errlog.TextOf), never err.Error(): the detail is for the log.
// An error carrying a retry delay ([RetryAfter]) adds a Retry-After header;
// an errlog.Unauthenticated error adds WWW-Authenticate as RFC 6750 asks.
//
// A refusal closes an HTTP/1.x connection (Connection: close, which
// net/http honours once the response is written): a refused client has no
// next request the server wants, and a kept-alive connection would hold a
// file descriptor that no connection cap counts. On HTTP/2 the refusal
// ends its stream only, as the header means nothing there.
//
// The log line carries the client IP ([ClientIP]), the status, the path and
// the Origin and User-Agent escaped as errlog.Untrusted. Other headers, the
// query string and cookies are never logged because they may carry
// credentials. A nil l means the request's logger ([LoggerFrom]): the
// Server's, for middleware installed on one. The refusal is reported to
// the request's observer ([ObserverFrom]).
func Reject(w http.ResponseWriter, r *http.Request, l *slog.Logger, err error) {
	if err == nil {
		err = errlog.NewError(errlog.Internal, errors.New("wsguard: Reject called with a nil error"))
	}
	code := errlog.CodeOf(err)
	status := code.HTTPStatus()
	if status == 0 {
		// The code has no pre-upgrade meaning (errlog.Idle); the caller erred.
		status = http.StatusInternalServerError
	}
	// An error that carries a reply (a list of failed fields) is answered
	// with the same JSON a message would get; others with the code's text.
	body, contentType := []byte(errlog.TextOf(err)), "text/plain; charset=utf-8"
	if _, ok := errors.AsType[Replier](err); ok {
		if b, merr := replyFor(err); merr == nil {
			body, contentType = b, "application/json"
		}
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if d := RetryAfter(err); d > 0 {
		h.Set("Retry-After", strconv.FormatInt(retryAfterSeconds(d), 10))
	}
	if code == errlog.Unauthenticated {
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	if r.ProtoMajor == 1 {
		h.Set("Connection", "close")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	observeRejected(r, code, status, err)

	if l == nil {
		l = LoggerFrom(r.Context())
	}
	errlog.Log(r.Context(), l, "handshake rejected", err,
		slog.String(errlog.KeyRemote, ClientIP(r).String()),
		slog.Int(errlog.KeyStatus, status),
		slog.Any(errlog.KeyOrigin, errlog.Untrusted(r.Header.Get("Origin"))),
		slog.Any(errlog.KeyUA, errlog.Untrusted(r.Header.Get("User-Agent"))),
		slog.Any("path", errlog.Untrusted(r.URL.Path)),
	)
}

// retryAfterSeconds rounds d up to whole seconds, at least 1, because
// Retry-After has no finer unit and a client told "0" would retry at once.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// RetryAfter returns the delay after which a request refused with err may
// succeed, or 0 when err carries none.
func RetryAfter(err error) time.Duration {
	if re, ok := errors.AsType[*retryAfterError](err); ok {
		return re.after
	}
	return 0
}

// retryAfterError adds a retry delay to an *errlog.Error. It unwraps to it,
// so errlog.CodeOf and errlog.TextOf see through it.
type retryAfterError struct {
	err   *errlog.Error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// retryError returns an error of the given code that tells the client to
// retry after the given delay.
func retryError(code errlog.Code, after time.Duration, cause error) error {
	return &retryAfterError{err: errlog.NewError(code, cause), after: after}
}

// admitHandler is the Handler of a guard whose admit method decides alone
// (an IPFilter, an OriginCheck, a HandshakeLimit): a Server calls the
// same admit in line for the guards installed on it.
func admitHandler(admit func(http.ResponseWriter, *http.Request) bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if admit(w, r) {
			h.ServeHTTP(w, r)
		}
	})
}

// quoteUntrusted quotes a client-supplied string for an error's detail,
// escaped and bounded as errlog.Untrusted logs it.
func quoteUntrusted(s string) string {
	return `"` + errlog.Escape(s) + `"`
}
