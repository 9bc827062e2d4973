package bench

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// ReadLimit is the largest message every variant accepts: the default of
// coder/websocket and of wsguard.
const ReadLimit = 32 << 10

// Variant is one echo server under test.
type Variant struct {
	// Name is the variant's row name: "coder", "gorilla", "guard" or "full".
	Name string
	// Handler returns a fresh server.
	Handler func() http.Handler
	// Header returns the handshake headers a client needs, if any.
	Header func() http.Header
	// Payload returns a valid message of exactly n bytes for this variant.
	Payload func(n int) []byte
}

// Coder is the reference: coder/websocket used as its documentation shows,
// Read and Write with the request's context.
var Coder = Variant{Name: "coder", Handler: func() http.Handler { return http.HandlerFunc(coderEcho) }, Payload: Text}

// Gorilla is gorilla/websocket used as its documentation shows,
// ReadMessage and WriteMessage, with the same read limit.
var Gorilla = Variant{Name: "gorilla", Handler: func() http.Handler { return http.HandlerFunc(gorillaEcho) }, Payload: Text}

// Guard is the guarded echo: wsguard with every default guard on (size
// limit, UTF-8, message rate with a high limit, idle timeout and pings,
// write timeout, panic recovery) and logging of errors only. The
// per-IP connection cap and handshake rate are raised so that one
// loopback client can open a thousand connections.
var Guard = Variant{Name: "guard", Handler: guardServer, Payload: Text}

// Variants returns the variants available in this build, the reference
// first.
func Variants() []Variant {
	vs := []Variant{Coder, Gorilla, Guard}
	if fullStack.Handler != nil {
		vs = append(vs, fullStack)
	}
	return vs
}

// VariantByName returns the named variant.
func VariantByName(name string) (Variant, bool) {
	for _, v := range Variants() {
		if v.Name == name {
			return v, true
		}
	}
	return Variant{}, false
}

// fullStack is set by fullstack.go when the auth and validate packages are
// part of the build.
var fullStack Variant

// Text returns n bytes of printable ASCII.
func Text(n int) []byte {
	return []byte(strings.Repeat("abcdefghijklmnopqrstuvwxyz012345", n/32+1)[:n])
}

func coderEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, b); err != nil {
			return
		}
	}
}

var upgrader = gorilla.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func gorillaEcho(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetReadLimit(ReadLimit)
	for {
		typ, b, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(typ, b); err != nil {
			return
		}
	}
}

// GuardOptions are the options of the guarded variants: the defaults, with
// the limits that a single loopback load generator would trip raised.
func GuardOptions() []wsguard.Option {
	return []wsguard.Option{
		wsguard.WithLogger(errlog.NewLogger(io.Discard, slog.LevelError)),
		wsguard.WithMaxConns(wsguard.DefaultMaxConns, wsguard.DefaultMaxConns),
		wsguard.WithHandshakeRate(1e6, 1e6),
		wsguard.WithMessageRate(1e7, 1e7),
	}
}

func guardServer() http.Handler {
	return wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.Send(ctx, m.Type, m.Data)
	}), GuardOptions()...)
}
