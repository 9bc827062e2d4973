package wsguard_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// panicText runs f and returns what it panicked with, or "" when it
// returned.
func panicText(f func()) (text string) {
	defer func() {
		if p := recover(); p != nil {
			text = fmt.Sprint(p)
		}
	}()
	f()
	return ""
}

type nopConnStore struct{}

func (nopConnStore) AcquireConn(context.Context, string, int, int) (func(), error) {
	return func() {}, nil
}

type nopHandshakeStore struct{}

func (nopHandshakeStore) AllowHandshake(context.Context, string, float64, int) (time.Duration, error) {
	return 0, nil
}

// TestEveryOptionIsCheckedAtConstruction walks every option and guard
// constructor of the package with a value it refuses, and the edge values
// it accepts: a mistake panics in New (or the constructor) with a message
// naming the call and its value, never later in a serving goroutine.
func TestEveryOptionIsCheckedAtConstruction(t *testing.T) {
	t.Parallel()
	server := func(opts ...wsguard.Option) []wsguard.Option { return opts }
	passThrough := func(h http.Handler) http.Handler { return h }
	tests := []struct {
		name string
		opts []wsguard.Option // for New and CheckOptions, when f is nil
		f    func()
		want string // the panic; "" when accepted
	}{
		{"New with no options", server(), nil, ""},
		{"New(nil)", nil, func() { wsguard.New(nil) }, "wsguard: New(nil, ...): needs a Handler"},

		{"WithReadLimit(1)", server(wsguard.WithReadLimit(1)), nil, ""},
		{"WithReadLimit(1 GiB)", server(wsguard.WithReadLimit(1 << 30)), nil, ""},
		{"WithReadLimit(0)", server(wsguard.WithReadLimit(0)), nil, "wsguard: WithReadLimit(0): must be between 1 and 1 GiB"},
		{"WithReadLimit(-5)", server(wsguard.WithReadLimit(-5)), nil, "wsguard: WithReadLimit(-5): must be between 1 and 1 GiB"},
		{"WithReadLimit(MaxInt64)", server(wsguard.WithReadLimit(math.MaxInt64)), nil, "wsguard: WithReadLimit(9223372036854775807): must be between 1 and 1 GiB"},

		{"WithSubprotocols()", server(wsguard.WithSubprotocols()), nil, ""},
		{"WithSubprotocols(chat.v1)", server(wsguard.WithSubprotocols("chat.v1", "graphql-transport-ws")), nil, ""},
		{"WithSubprotocols(empty)", server(wsguard.WithSubprotocols("chat", "")), nil, `wsguard: WithSubprotocols(""): not an HTTP token`},
		{"WithSubprotocols(comma)", server(wsguard.WithSubprotocols("a,b")), nil, `wsguard: WithSubprotocols("a,b"): not an HTTP token`},
		{"WithSubprotocols(space)", server(wsguard.WithSubprotocols("chat v1")), nil, `wsguard: WithSubprotocols("chat v1"): not an HTTP token`},

		{"WithOrigins()", server(wsguard.WithOrigins()), nil, ""},
		{"WithOrigins(pattern)", server(wsguard.WithOrigins("*.example.com", "https://app.example.org")), nil, ""},
		{"WithOrigins(*)", server(wsguard.WithOrigins("*")), nil, `wsguard: WithOrigins("*"): origin pattern "*": the host has no label without a wildcard`},
		{"WithOrigins(empty)", server(wsguard.WithOrigins("")), nil, `wsguard: WithOrigins(""): empty origin pattern`},
		{"WithOrigins(bad pattern)", server(wsguard.WithOrigins("[a")), nil, `wsguard: WithOrigins("[a"): origin pattern "[a": syntax error in pattern`},
		{"InsecureSkipOriginCheck", server(wsguard.InsecureSkipOriginCheck()), nil, ""},
		{"WithOrigins beside InsecureSkipOriginCheck", server(wsguard.WithOrigins("a.example.com"), wsguard.InsecureSkipOriginCheck()), nil, `wsguard: WithOrigins(["a.example.com"]): has no effect beside InsecureSkipOriginCheck`},

		{"WithMessageRate(0.5, 1)", server(wsguard.WithMessageRate(0.5, 1)), nil, ""},
		{"WithMessageRate(0, 0)", server(wsguard.WithMessageRate(0, 0)), nil, "wsguard: WithMessageRate(0, 0): the rate must be a finite number > 0"},
		{"WithMessageRate(10, 0)", server(wsguard.WithMessageRate(10, 0)), nil, "wsguard: WithMessageRate(10, 0): the burst must be >= 1"},
		{"WithMessageRate(NaN)", server(wsguard.WithMessageRate(math.NaN(), 1)), nil, "wsguard: WithMessageRate(NaN, 1): the rate must be a finite number > 0"},
		{"WithMessageRate(Inf)", server(wsguard.WithMessageRate(math.Inf(1), 1)), nil, "wsguard: WithMessageRate(+Inf, 1): the rate must be a finite number > 0"},

		{"WithPingInterval(0) is off", server(wsguard.WithPingInterval(0)), nil, ""},
		{"WithPingInterval(-1s)", server(wsguard.WithPingInterval(-time.Second)), nil, "wsguard: WithPingInterval(-1s): must be >= 0 (0: no pings)"},
		{"WithIdleTimeout(0) is off", server(wsguard.WithIdleTimeout(0)), nil, ""},
		{"WithIdleTimeout(-1ns)", server(wsguard.WithIdleTimeout(-1)), nil, "wsguard: WithIdleTimeout(-1ns): must be >= 0 (0: no idle timeout)"},
		{"WithWriteTimeout(1ms)", server(wsguard.WithWriteTimeout(time.Millisecond)), nil, ""},
		{"WithWriteTimeout(0)", server(wsguard.WithWriteTimeout(0)), nil, "wsguard: WithWriteTimeout(0s): must be > 0"},
		{"WithWriteTimeout(-1s)", server(wsguard.WithWriteTimeout(-time.Second)), nil, "wsguard: WithWriteTimeout(-1s): must be > 0"},

		{"WithMaxInvalid(1)", server(wsguard.WithMaxInvalid(1)), nil, ""},
		{"WithMaxInvalid(0)", server(wsguard.WithMaxInvalid(0)), nil, "wsguard: WithMaxInvalid(0): must be >= 1"},
		{"WithMaxInvalid(-1)", server(wsguard.WithMaxInvalid(-1)), nil, "wsguard: WithMaxInvalid(-1): must be >= 1"},

		{"WithMaxFrames(1)", server(wsguard.WithMaxFrames(1)), nil, ""},
		{"WithMaxFrames(0)", server(wsguard.WithMaxFrames(0)), nil, "wsguard: WithMaxFrames(0): must be >= 1"},
		{"WithSendQueue(1, 1)", server(wsguard.WithSendQueue(1, 1)), nil, ""},
		{"WithSendQueue(0, 1)", server(wsguard.WithSendQueue(0, 1)), nil, "wsguard: WithSendQueue(0, 1): both must be >= 1"},
		{"WithSendQueue(1024, -1)", server(wsguard.WithSendQueue(1024, -1)), nil, "wsguard: WithSendQueue(1024, -1): both must be >= 1"},

		{"WithBinary", server(wsguard.WithBinary()), nil, ""},
		{"WithLogger(nil) is slog.Default", server(wsguard.WithLogger(nil)), nil, ""},
		{"WithDigest(sha256.New)", server(wsguard.WithDigest(sha256.New)), nil, ""},
		{"WithDigest(nil)", server(wsguard.WithDigest(nil)), nil, "wsguard: WithDigest(nil): needs a hash constructor"},

		{"WithMaxConns(1, 1)", server(wsguard.WithMaxConns(1, 1)), nil, ""},
		{"WithMaxConns(0, 0)", server(wsguard.WithMaxConns(0, 0)), nil, "wsguard: WithMaxConns(0, 0): both caps must be >= 1"},
		{"WithMaxConns(10, -1)", server(wsguard.WithMaxConns(10, -1)), nil, "wsguard: WithMaxConns(10, -1): both caps must be >= 1"},
		{"WithHandshakeRate(0.001, 1)", server(wsguard.WithHandshakeRate(0.001, 1)), nil, ""},
		{"WithHandshakeRate(0, 20)", server(wsguard.WithHandshakeRate(0, 20)), nil, "wsguard: WithHandshakeRate(0, 20): the rate must be a finite number > 0"},
		{"WithHandshakeRate(10, 0)", server(wsguard.WithHandshakeRate(10, 0)), nil, "wsguard: WithHandshakeRate(10, 0): the burst must be >= 1"},

		{"WithRealIP(nil)", server(wsguard.WithRealIP(nil)), nil, "wsguard: WithRealIP(nil): needs the RealIP that NewRealIP returned"},
		{"WithIPFilter(nil)", server(wsguard.WithIPFilter(nil)), nil, "wsguard: WithIPFilter(nil): needs the IPFilter that NewIPFilter returned"},
		{"WithHandshake(mw)", server(wsguard.WithHandshake(passThrough)), nil, ""},
		{"WithHandshake(mw, nil)", server(wsguard.WithHandshake(passThrough, nil)), nil, "wsguard: WithHandshake(middleware 2 of 2: nil): needs a middleware"},
		{"WithConnect(nil)", server(wsguard.WithConnect(nil)), nil, "wsguard: WithConnect(nil): needs a function"},
		{"WithDisconnect(nil)", server(wsguard.WithDisconnect(nil)), nil, "wsguard: WithDisconnect(nil): needs a function"},
		{"WithMiddleware(nil)", server(wsguard.WithMiddleware(nil)), nil, "wsguard: WithMiddleware(middleware 1 of 1: nil): needs a middleware"},
		{"WithObserver(nil)", server(wsguard.WithObserver(nil)), nil, "wsguard: WithObserver(nil): needs an Observer"},
		{"WithConnStore(nil)", server(wsguard.WithConnStore(nil)), nil, "wsguard: WithConnStore(nil): needs a ConnStore"},
		{"WithConnStore", server(wsguard.WithConnStore(nopConnStore{})), nil, ""},
		{"WithHandshakeStore(nil)", server(wsguard.WithHandshakeStore(nil)), nil, "wsguard: WithHandshakeStore(nil): needs a HandshakeStore"},
		{"WithHandshakeStore", server(wsguard.WithHandshakeStore(nopHandshakeStore{})), nil, ""},

		{"NewConnLimit(1, 1)", nil, func() { wsguard.NewConnLimit(1, 1) }, ""},
		{"NewConnLimit(0, 0)", nil, func() { wsguard.NewConnLimit(0, 0) }, "wsguard: NewConnLimit(0, 0): both caps must be >= 1"},
		{"NewHandshakeLimit(0.5, 1)", nil, func() { wsguard.NewHandshakeLimit(0.5, 1) }, ""},
		{"NewHandshakeLimit(-1, 5)", nil, func() { wsguard.NewHandshakeLimit(-1, 5) }, "wsguard: NewHandshakeLimit(-1, 5): the rate must be a finite number > 0"},
		{"NewHandshakeLimit(1, 0)", nil, func() { wsguard.NewHandshakeLimit(1, 0) }, "wsguard: NewHandshakeLimit(1, 0): the burst must be >= 1"},
		{"NewSubjectConnLimit(1, nil) counts in memory", nil, func() { wsguard.NewSubjectConnLimit(1, nil) }, ""},
		{"NewSubjectConnLimit(0, nil)", nil, func() { wsguard.NewSubjectConnLimit(0, nil) }, "wsguard: NewSubjectConnLimit(0, ...): must be >= 1"},
		{"WithGuardClock(nil) is time.Now", nil, func() { wsguard.NewHandshakeLimit(1, 1, wsguard.WithGuardClock(nil)) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tt.f
			if f == nil {
				f = func() { wsguard.New(echo, tt.opts...) }
				// The same check, as an error for options from user input.
				err := wsguard.CheckOptions(tt.opts...)
				if got := fmt.Sprint(err); tt.want == "" && err != nil || tt.want != "" && got != tt.want {
					t.Errorf("CheckOptions = %v, want %q", err, tt.want)
				}
			}
			if got := panicText(f); got != tt.want {
				t.Fatalf("panic %q, want %q", got, tt.want)
			}
		})
	}
}

// TestConstructorsReportBadListsAsErrors: the constructors whose inputs
// are lists an application reads at run time return an error naming the
// entry, and do not panic.
func TestConstructorsReportBadListsAsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    func() error
		want string
	}{
		{"NewRealIP", func() error { _, err := wsguard.NewRealIP([]string{"10.0.0.1/8"}); return err },
			`wsguard: trusted proxy: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?`},
		{"NewIPFilter allow", func() error { _, err := wsguard.NewIPFilter([]string{"nope"}, nil); return err },
			`wsguard: IP allow list: "nope" is not an IP address or CIDR prefix`},
		{"NewIPFilter deny", func() error { _, err := wsguard.NewIPFilter(nil, []string{"1.2.3"}); return err },
			`wsguard: IP deny list: "1.2.3" is not an IP address or CIDR prefix`},
		{"NewOriginCheck", func() error { _, err := wsguard.NewOriginCheck([]string{"*.com"}); return err },
			`wsguard: origin pattern "*.com" admits unrelated sites such as "wsguard-probe.com"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if p := panicText(func() { err = tt.f() }); p != "" {
				t.Fatalf("panicked: %s", p)
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestMaxInvalidOneClosesOnTheFirst pins the meaning of the smallest
// accepted WithMaxInvalid.
func TestMaxInvalidOneClosesOnTheFirst(t *testing.T) {
	t.Parallel()
	invalid := wsguard.HandlerFunc(func(context.Context, *wsguard.Conn, *wsguard.Message) error {
		return errlog.NewError(errlog.InvalidArgument, errors.New("never valid"))
	})
	ts := start(t, invalid, wsguard.WithMaxInvalid(1))
	c := dial(t, ts.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("bad")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("read: %v, want close 1008", err)
	}
}
