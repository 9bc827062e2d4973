package validate_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

type join struct {
	Room  string `json:"room" validate:"required,alphanum,max=16"`
	Email string `json:"email" validate:"required,email"`
}

type say struct {
	Text string `json:"text" validate:"required,max=200"`
}

// ping declares the type member itself.
type ping struct {
	Type string `json:"type"`
	N    int    `json:"n" validate:"gte=1"`
}

// newRouter answers join, say and ping with what the handler saw,
// including the digest it can name the message by.
func newRouter() *validate.Router {
	r := validate.NewRouter(newValidator())
	validate.Handle(r, "join", func(ctx context.Context, c *wsguard.Conn, m join) error {
		return c.SendText(ctx, "joined "+m.Room+" "+validate.Digest(ctx))
	})
	validate.Handle(r, "say", func(ctx context.Context, c *wsguard.Conn, m say) error {
		return c.SendText(ctx, "said "+m.Text)
	})
	validate.Handle(r, "ping", func(ctx context.Context, c *wsguard.Conn, m ping) error {
		return c.SendText(ctx, fmt.Sprintf("pong %s %d", m.Type, m.N))
	})
	return r
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestRouter(t *testing.T) {
	t.Parallel()
	logs := new(wstest.Logs)
	url := serve(t, newRouter(), logs)
	joinMsg := `{"type":"join","room":"lobby","email":"ada@example.com"}`
	tests := []struct {
		name string
		in   string
		want string // a reply, or an error reply as JSON
	}{
		{"routed", joinMsg, "joined lobby " + digest(joinMsg)},
		{"type not first", `{"text":"hi","type":"say"}`, "said hi"},
		{"spaces before type", ` { "type" : "say", "text":"hi"}`, "said hi"},
		{"escaped type", `{"type":"s\u0061y","text":"hi"}`, "said hi"},
		{"struct with its own type member", `{"type":"ping","n":2}`, "pong ping 2"},
		{"field error", `{"type":"join","room":"lobby","email":"SECRET"}`,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"email","rule":"email"}]}`},
		{"another type's member", `{"type":"say","text":"hi","room":"SECRET"}`,
			`{"type":"error","code":"invalid_argument","message":"unknown field","offset":26}`},
		{"missing type", `{"text":"SECRET"}`,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"type","rule":"required"}]}`},
		{"empty type", `{"type":"","text":"SECRET"}`,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"type","rule":"required"}]}`},
		{"type not a string", `{"text":"SECRET","type":7}`,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"type","rule":"type","param":"string"}]}`},
		{"duplicate type", `{"type":"say","type":"join","text":"SECRET"}`,
			`{"type":"error","code":"invalid_json","message":"duplicate key","offset":14}`},
		{"duplicate type on the slow path", `{"text":"SECRET","type":"say","type":"join"}`,
			`{"type":"error","code":"invalid_json","message":"duplicate key","offset":30}`},
		{"malformed", `{"type":"say","text":"SECRET"`,
			`{"type":"error","code":"invalid_json","message":"unexpected end of JSON","offset":29}`},
		{"malformed on the slow path", `{"text":"SECRET",`,
			`{"type":"error","code":"invalid_json","message":"unexpected end of JSON","offset":17}`},
		{"not an object", `["say"]`,
			`{"type":"error","code":"invalid_json","message":"expected a JSON object","offset":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, url)
			send(t, c, tt.in)
			if got := read(t, c); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("log names the digest, not the content", func(t *testing.T) {
		c := dial(t, url)
		in := `{"type":"join","room":"lobby","email":"SECRET-in-log"}`
		send(t, c, in)
		read(t, c)
		_ = c.Close(websocket.StatusNormalClosure, "")
		if l := logs.String(); strings.Contains(l, "SECRET") || !strings.Contains(l, digest(in)) {
			t.Errorf("log:\n%s", l)
		}
	})
}

func TestRouterUnknownTypeCloses(t *testing.T) {
	t.Parallel()
	logs := new(wstest.Logs)
	c := dial(t, serve(t, newRouter(), logs))
	send(t, c, `{"type":"SECRET","text":"x"}`)
	if got := closeStatus(t, c); got != websocket.StatusUnsupportedData {
		t.Errorf("close %v, want 1003", got)
	}
}

func TestStrikesClose(t *testing.T) {
	t.Parallel()
	c := dial(t, serve(t, newRouter(), new(wstest.Logs)))
	bad := `{"type":"join","room":"lobby","email":"nope"}`
	// Four in a row are answered; a good one resets the count.
	for range 4 {
		send(t, c, bad)
		if got := read(t, c); !strings.Contains(got, `"rule":"email"`) {
			t.Fatalf("reply %s", got)
		}
	}
	send(t, c, `{"type":"say","text":"hi"}`)
	read(t, c)
	for range 4 {
		send(t, c, bad)
		read(t, c)
	}
	send(t, c, bad)
	if got := closeStatus(t, c); got != websocket.StatusPolicyViolation {
		t.Errorf("close %v, want 1008", got)
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	h := validate.JSON(newValidator(), func(ctx context.Context, c *wsguard.Conn, m join) error {
		return c.SendJSON(ctx, map[string]string{"room": m.Room, "digest": validate.Digest(ctx)})
	})
	url := serve(t, h, new(wstest.Logs))
	in := `{"room":"lobby","email":"ada@example.com"}`
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"valid", in, `{"digest":"` + digest(in) + `","room":"lobby"}`},
		{"type member is unknown here", `{"type":"join","room":"lobby","email":"ada@example.com"}`,
			`{"type":"error","code":"invalid_argument","message":"unknown field","offset":1}`},
		{"invalid email", `{"room":"lobby","email":"x@"}`,
			`{"type":"error","code":"invalid_argument","fields":[{"field":"email","rule":"email"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, url)
			send(t, c, tt.in)
			if got := read(t, c); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDigestOutsideHandler(t *testing.T) {
	t.Parallel()
	if d := validate.Digest(context.Background()); d != "" {
		t.Errorf("Digest = %q, want empty", d)
	}
}

func TestRegistrationPanics(t *testing.T) {
	t.Parallel()
	noop := func(context.Context, *wsguard.Conn, say) error { return nil }
	tests := []struct {
		name string
		f    func()
	}{
		{"empty type", func() { validate.Handle(validate.NewRouter(newValidator()), "", noop) }},
		{"twice", func() {
			r := validate.NewRouter(newValidator())
			validate.Handle(r, "say", noop)
			validate.Handle(r, "say", noop)
		}},
		{"not a struct", func() {
			validate.Handle(validate.NewRouter(newValidator()), "n", func(context.Context, *wsguard.Conn, int) error { return nil })
		}},
		{"type member not a string", func() {
			type bad struct {
				Type int `json:"type"`
			}
			validate.Handle(validate.NewRouter(newValidator()), "bad", func(context.Context, *wsguard.Conn, bad) error { return nil })
		}},
		{"JSON of a pointer", func() {
			validate.JSON(newValidator(), func(context.Context, *wsguard.Conn, *say) error { return nil })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.f()
		})
	}
}
