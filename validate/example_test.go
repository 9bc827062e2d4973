package validate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/go-playground/validator/v10"

	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// A chat server with two message types, each with its own struct and
// rules, and a client that makes a mistake.
func ExampleRouter() {
	type Join struct {
		Room  string `json:"room" validate:"required,alphanum,max=32"`
		Email string `json:"email" validate:"required,email"`
	}
	type Say struct {
		Text string `json:"text" validate:"required,max=500"`
	}

	v := validate.New() // once, at start-up
	r := validate.NewRouter(v)
	validate.Handle(r, "join", func(ctx context.Context, c *wsguard.Conn, m Join) error {
		return c.SendText(ctx, "welcome to "+m.Room)
	})
	validate.Handle(r, "say", func(ctx context.Context, c *wsguard.Conn, m Say) error {
		return c.SendText(ctx, "you said "+m.Text)
	})

	// The server's log lines go elsewhere; this example prints what the
	// client sees.
	srv := wsguard.New(r, wsguard.WithLogger(slog.New(slog.DiscardHandler)))
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	for _, msg := range []string{
		`{"type":"join","room":"lobby","email":"ada@"}`,
		`{"type":"join","room":"lobby","email":"ada@example.com"}`,
		`{"type":"say","text":"hello","text":"again"}`,
		`{"type":"say","text":"hello"}`,
	} {
		_ = c.Write(ctx, websocket.MessageText, []byte(msg))
		_, reply, _ := c.Read(ctx)
		fmt.Println(string(reply))
	}
	// Output:
	// {"type":"error","code":"invalid_argument","fields":[{"field":"email","rule":"email"}]}
	// welcome to lobby
	// {"type":"error","code":"invalid_json","message":"duplicate key","offset":29}
	// you said hello
}

// Decoding and validating outside a server, with a custom rule.
func ExampleValidator_Unmarshal() {
	type Profile struct {
		Name  string `json:"name" validate:"required,lowercase_ascii"`
		Email string `json:"email" validate:"required,email"`
	}
	v := validate.New(validate.WithRule("lowercase_ascii", func(fl validator.FieldLevel) bool {
		return strings.Trim(fl.Field().String(), "abcdefghijklmnopqrstuvwxyz") == ""
	}))

	var p Profile
	err := v.Unmarshal([]byte(`{"name":"Ada","email":"not an address"}`), &p)
	var rp wsguard.Replier
	if errors.As(err, &rp) {
		for _, f := range rp.Reply().Fields {
			fmt.Println(f.Field, f.Rule)
		}
	}
	// Output:
	// name lowercase_ascii
	// email email
}

// A Go client signs each message for a server that uses Signed.
func ExampleSign() {
	key := []byte("0123456789abcdef0123456789abcdef") // pre-shared with the server
	ts := time.UnixMilli(1767225600000)               // time.Now() in a real client
	msg, err := validate.Sign(key, "device-7", 1, ts, []byte(`{"type":"say","text":"hello"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(msg))
	// Output:
	// _CAfK3a6skJUNR3vMk17uAmFl55hBFEAZaKmaTK2AUs WSG1 device-7 1 1767225600000
	// {"type":"say","text":"hello"}
}

// The query string of the handshake, checked like a message.
func ExampleQuery() {
	type Params struct {
		Room string `json:"room" validate:"required,alphanum"`
	}
	guard := validate.Query[Params](validate.New())
	// Installed on a wsguard.Server (wsguard.WithHandshake), the guard logs
	// to the server's logger; in front of another handler, Instrument
	// gives it one.
	quiet := wsguard.Instrument(slog.New(slog.DiscardHandler), nil)
	h := quiet(guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := validate.QueryFrom[Params](r.Context())
		fmt.Fprintln(w, "room", p.Room)
	})))

	for _, target := range []string{"/ws?room=lobby", "/ws?room=no+spaces", "/ws?room=lobby&token=x"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		body, _ := io.ReadAll(w.Body)
		fmt.Print(w.Code, " ", string(body))
		if w.Code != http.StatusOK {
			fmt.Println()
		}
	}
	// Output:
	// 200 room lobby
	// 400 {"type":"error","code":"invalid_argument","fields":[{"field":"room","rule":"alphanum"}]}
	// 400 {"type":"error","code":"invalid_argument","message":"unknown parameter"}
}
