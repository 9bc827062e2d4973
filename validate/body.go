package validate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// DefaultMaxBody is the largest request body [Body] reads unless
// [WithMaxBody] says otherwise: the server's default message size, so an
// HTTP endpoint beside a WebSocket one accepts what a message may carry.
const DefaultMaxBody = 32 << 10

var (
	errBodyType     = errors.New("request body is not application/json")
	errBodyTooLarge = errors.New("request body over the size limit")
	errBodyRead     = errors.New("request body could not be read")
)

// Body returns HTTP middleware that decodes the request's body into a T
// (a struct) and validates it with v, with the same strictness, rules and
// error replies as a message: an HTTP endpoint beside the WebSocket one
// (a POST that pushes to a customer's connections, say) checks its input
// as the socket does.
//
// The body must be declared application/json (or a "+json" type): a
// cross-site form cannot send that without the browser asking the server
// first. It is read up to the Validator's body limit ([WithMaxBody]). A
// request that fails is answered by [WriteError]: 400 with the JSON error
// reply a message would get, 413 for a body over the limit, and one log
// line without the body. The handler behind reads the value with
// [BodyFrom]. Body panics on a nil v and when T is not a struct.
func Body[T any](v *Validator) func(http.Handler) http.Handler {
	root := structType[T]("Body")
	if v == nil {
		misconfigured(fmt.Sprintf("Body[%v](nil)", root), "needs a Validator")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var t T
			if err := v.decodeBody(w, r, &t, root); err != nil {
				WriteError(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyKey[T]{}, t)))
		})
	}
}

type bodyKey[T any] struct{}

// BodyFrom returns the body decoded by [Body] for the same T, and
// whether there was one.
func BodyFrom[T any](ctx context.Context) (T, bool) {
	t, ok := ctx.Value(bodyKey[T]{}).(T)
	return t, ok
}

func (v *Validator) decodeBody(w http.ResponseWriter, r *http.Request, dst any, root reflect.Type) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return errlog.NewError(errlog.Unsupported, errBodyType)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, v.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return errlog.NewError(errlog.TooLarge, errBodyTooLarge)
		}
		// The client stopped sending, or left.
		return errlog.NewError(errlog.InvalidArgument, fmt.Errorf("%w: %w", errBodyRead, err))
	}
	if err := v.precheck(data); err != nil {
		return err
	}
	return v.load(data, dst, dst, root)
}

// WriteError answers an HTTP request that failed for err, as [Body] and
// [Query] do: the status is errlog.CodeOf(err).HTTPStatus() (500 for a
// code with none), the body is the JSON error reply a WebSocket client
// would get for err (the fields a [wsguard.Replier] lists, or the code and
// its public text), never err.Error() or anything the client sent. An
// error carrying a retry delay adds Retry-After; an Unauthenticated one,
// WWW-Authenticate. It logs one line, "request rejected", with err's
// detail, the client IP, the status and the path, to the request's logger
// ([wsguard.LoggerFrom]).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		err = errlog.NewError(errlog.Internal, errors.New("validate: WriteError called with a nil error"))
	}
	code := errlog.CodeOf(err)
	status := code.HTTPStatus()
	if status == 0 {
		status = http.StatusInternalServerError
	}
	reply := wsguard.ReplyOf(err)
	body, merr := json.Marshal(reply)
	if merr != nil {
		body = []byte(`{"type":"error","code":"internal"}`)
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if d := wsguard.RetryAfter(err); d > 0 {
		h.Set("Retry-After", strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10))
	}
	if code == errlog.Unauthenticated {
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	errlog.Log(r.Context(), wsguard.LoggerFrom(r.Context()), "request rejected", err,
		slog.String(errlog.KeyRemote, wsguard.ClientIP(r).String()),
		slog.Int(errlog.KeyStatus, status),
		slog.String("method", r.Method),
		slog.Any("path", errlog.Untrusted(r.URL.Path)),
	)
}
