package errlog

import (
	"log/slog"
	"net/http"
	"strconv"
)

// Code classifies an error. The set is closed: every failure maps to one of
// these, and [Code.CloseStatus], [Code.HTTPStatus], [Code.Level] and
// [Code.Text] read one table.
type Code uint8

// The codes, in the order of the design's error table.
const (
	// Canceled: the server is shutting down or the peer went away.
	Canceled Code = iota + 1
	// InvalidArgument: a message that does not decode or validate. Recoverable:
	// the client gets an error reply and the connection stays open.
	InvalidArgument
	// InvalidPayload: invalid UTF-8 in a text message.
	InvalidPayload
	// Unsupported: a binary message on a text endpoint, an unknown message type.
	Unsupported
	// TooLarge: a message over the read limit.
	TooLarge
	// Unauthenticated: a missing, invalid, expired or revoked token.
	Unauthenticated
	// PermissionDenied: a refused origin or IP address, or failed authorization.
	PermissionDenied
	// DeadlineExceeded: the client did not authenticate in time, or a write
	// to a slow client did not finish in time.
	DeadlineExceeded
	// Idle: the peer was silent past the idle timeout and did not answer pings.
	Idle
	// ResourceExhausted: a rate limit or a per-client cap was hit.
	ResourceExhausted
	// Unavailable: the server is at capacity or draining.
	Unavailable
	// PolicyViolation: abuse not covered by another code.
	PolicyViolation
	// Protocol: the peer broke RFC 6455.
	Protocol
	// Internal: a handler panic or an unexpected error.
	Internal

	maxCode = Internal
)

// WebSocket close status codes used in the table. 4401, 4403, 4408 and 4429
// follow graphql-ws (4000 + the HTTP status) so that a browser can tell "get a
// new token" from "slow down".
const (
	CloseNormal            = 1000
	CloseGoingAway         = 1001
	CloseProtocolError     = 1002
	CloseUnsupportedData   = 1003
	CloseInvalidPayload    = 1007
	ClosePolicyViolation   = 1008
	CloseMessageTooBig     = 1009
	CloseInternalError     = 1011
	CloseTryAgainLater     = 1013
	CloseUnauthenticated   = 4401
	ClosePermissionDenied  = 4403
	CloseDeadlineExceeded  = 4408
	CloseResourceExhausted = 4429
)

type row struct {
	name  string
	close int // 0: the connection stays open
	http  int // 0: cannot happen before the upgrade
	level slog.Level
	text  string
}

// table is the one mapping from code to the wire and the log.
var table = [...]row{
	Canceled:          {"canceled", CloseGoingAway, http.StatusServiceUnavailable, slog.LevelDebug, "going away"},
	InvalidArgument:   {"invalid_argument", 0, http.StatusBadRequest, slog.LevelInfo, "invalid argument"},
	InvalidPayload:    {"invalid_payload", CloseInvalidPayload, http.StatusBadRequest, slog.LevelInfo, "invalid UTF-8"},
	Unsupported:       {"unsupported", CloseUnsupportedData, http.StatusBadRequest, slog.LevelInfo, "unsupported message"},
	TooLarge:          {"too_large", CloseMessageTooBig, http.StatusRequestEntityTooLarge, slog.LevelWarn, "message too big"},
	Unauthenticated:   {"unauthenticated", CloseUnauthenticated, http.StatusUnauthorized, slog.LevelInfo, "invalid token"},
	PermissionDenied:  {"permission_denied", ClosePermissionDenied, http.StatusForbidden, slog.LevelWarn, "forbidden"},
	DeadlineExceeded:  {"deadline_exceeded", CloseDeadlineExceeded, http.StatusRequestTimeout, slog.LevelInfo, "timeout"},
	Idle:              {"idle", CloseGoingAway, 0, slog.LevelInfo, "idle timeout"},
	ResourceExhausted: {"resource_exhausted", CloseResourceExhausted, http.StatusTooManyRequests, slog.LevelWarn, "rate limit exceeded"},
	Unavailable:       {"unavailable", CloseTryAgainLater, http.StatusServiceUnavailable, slog.LevelInfo, "try again later"},
	PolicyViolation:   {"policy_violation", ClosePolicyViolation, http.StatusBadRequest, slog.LevelWarn, "policy violation"},
	Protocol:          {"protocol", CloseProtocolError, http.StatusBadRequest, slog.LevelInfo, "protocol error"},
	Internal:          {"internal", CloseInternalError, http.StatusInternalServerError, slog.LevelError, "internal error"},
}

// Codes lists every code, for tests and documentation that must cover them all.
func Codes() []Code {
	cs := make([]Code, 0, maxCode)
	for c := Canceled; c <= maxCode; c++ {
		cs = append(cs, c)
	}
	return cs
}

func (c Code) known() bool { return c >= Canceled && c <= maxCode }

// row returns c's row of the table. An unknown code (0, what [CodeOf]
// returns for nil, or a value outside the list) goes on the wire as the
// most conservative one, [Internal].
func (c Code) row() row {
	if !c.known() {
		return table[Internal]
	}
	return table[c]
}

// String returns the code's snake_case name, as used in logs and error
// replies. An unknown code reads as "code(N)": it is not a code of the
// table, whatever [Code.CloseStatus] and the other methods map it to.
func (c Code) String() string {
	if !c.known() {
		return "code(" + strconv.Itoa(int(c)) + ")"
	}
	return table[c].name
}

// CloseStatus returns the WebSocket close status for c, or 0 when an error of
// this code does not close the connection ([InvalidArgument]). An unknown
// code closes as [Internal] does.
func (c Code) CloseStatus() int { return c.row().close }

// HTTPStatus returns the HTTP status for c when it happens before the
// upgrade, or 0 when it cannot ([Idle]). An unknown code answers as
// [Internal] does.
func (c Code) HTTPStatus() int { return c.row().http }

// Level returns the slog level an error of this code is logged at; an
// unknown code is logged at [Internal]'s.
func (c Code) Level() slog.Level { return c.row().level }

// Text returns the short public text for c: the close reason or the HTTP
// body a client sees. It never contains detail from the error itself. An
// unknown code has [Internal]'s text.
func (c Code) Text() string { return c.row().text }

// LogValue logs the code by its name.
func (c Code) LogValue() slog.Value { return slog.StringValue(c.String()) }
