package bench

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/validate"
	"github.com/wsguard/kit/wsguard"
)

// chat is the full stack's typed message.
type chat struct {
	Room string `json:"room" validate:"required,max=64"`
	Text string `json:"text" validate:"required,max=32768"`
}

// hs256Key signs and verifies the full stack's tokens; a benchmark key.
var hs256Key = []byte("wsguard-bench-hs256-key-32-bytes")

func init() {
	fullStack = Variant{Name: "full", Handler: fullServer, Header: fullHeader, Payload: JSON}
}

// JSON returns a valid chat message of exactly n bytes (n >= 27).
func JSON(n int) []byte {
	const head, tail = `{"room":"lobby","text":"`, `"}`
	return []byte(head + string(Text(n-len(head)-len(tail))) + tail)
}

// fullServer is the full stack: an HS256 JWT verified at the handshake,
// each message decoded strictly into a struct and validated, its digest
// taken, and the message echoed once it passed.
func fullServer() http.Handler {
	v, err := auth.NewVerifier(jwa.HS256(), hs256Key)
	if err != nil {
		panic(err)
	}
	checked := validate.JSON(validate.New(), func(ctx context.Context, _ *wsguard.Conn, _ chat) error {
		_ = validate.Digest(ctx)
		return nil
	})
	echo := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		if err := checked.ServeMessage(ctx, c, m); err != nil {
			return err
		}
		return c.Send(ctx, m.Type, m.Data)
	})
	opts := append(GuardOptions(), wsguard.WithHandshake(auth.Middleware(v)))
	return wsguard.New(echo, opts...)
}

func fullHeader() http.Header {
	tok, err := auth.Sign(jwa.HS256(), hs256Key, auth.Claims{Subject: "bench", Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		panic(err)
	}
	return http.Header{"Authorization": {"Bearer " + strings.TrimSpace(string(tok))}}
}
