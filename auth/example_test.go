package auth_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

var exampleKey = []byte("an-hs256-key-of-at-least-32-bytes")

func ExampleVerifier_Verify() {
	v, err := auth.NewVerifier(jwa.HS256(), exampleKey, auth.WithIssuer("https://id.example"))
	if err != nil {
		panic(err)
	}
	tok, err := auth.Sign(jwa.HS256(), exampleKey, auth.Claims{
		Subject: "alice", Issuer: "https://id.example", Expiry: time.Now().Add(time.Hour),
	})
	if err != nil {
		panic(err)
	}
	p, err := v.Verify(context.Background(), tok)
	fmt.Println(p.Subject, err)

	expired, _ := auth.Sign(jwa.HS256(), exampleKey, auth.Claims{
		Subject: "alice", Issuer: "https://id.example", Expiry: time.Now().Add(-time.Hour),
	})
	_, err = v.Verify(context.Background(), expired)
	fmt.Println(errlog.CodeOf(err), errlog.TextOf(err))
	// Output:
	// alice <nil>
	// unauthenticated token expired
}

func ExampleMiddleware() {
	v, _ := auth.NewVerifier(jwa.HS256(), exampleKey)
	quiet := slog.New(slog.DiscardHandler)
	h := wsguard.Instrument(quiet, nil)(auth.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s", p.Subject)
	})))

	tok, _ := auth.Sign(jwa.HS256(), exampleKey, auth.Claims{Subject: "alice", Expiry: time.Now().Add(time.Hour)})
	for _, authz := range []string{"Bearer " + string(tok), "Bearer not-a-token", ""} {
		r := httptest.NewRequest(http.MethodGet, "/ws", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%d %q %q\n", w.Code, w.Body, w.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// 200 "hello alice" ""
	// 401 "invalid token" "Bearer error=\"invalid_token\""
	// 401 "invalid token" "Bearer error=\"invalid_token\""
}

func ExampleSessions() {
	v, _ := auth.NewVerifier(jwa.HS256(), exampleKey)
	quiet := slog.New(slog.DiscardHandler)
	sessions := auth.NewSessions(v,
		auth.WithFirstMessage(5*time.Second), // browsers without a handshake token send it first
		auth.OnAuthenticated(func(ctx context.Context, c *wsguard.Conn, p *auth.Principal) error {
			return c.SendText(ctx, "welcome "+p.Subject)
		}))
	app := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		p, _ := auth.PrincipalFrom(ctx)
		return c.SendText(ctx, p.Subject+" said "+string(m.Data))
	})
	srv := wsguard.New(app, append(sessions.Options(),
		wsguard.WithSubprotocols("wsguard.v1"), wsguard.WithLogger(quiet))...)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Shutdown(context.Background())

	// A browser would call new WebSocket(url, ["wsguard.v1", "bearer." + token]).
	ctx := context.Background()
	tok, _ := auth.Sign(jwa.HS256(), exampleKey, auth.Claims{Subject: "alice", Expiry: time.Now().Add(time.Hour)})
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"),
		&websocket.DialOptions{Subprotocols: []string{"wsguard.v1", "bearer." + string(tok)}})
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	fmt.Println("subprotocol:", c.Subprotocol())
	_, msg, _ := c.Read(ctx)
	fmt.Println(string(msg))
	_ = c.Write(ctx, websocket.MessageText, []byte("hi"))
	_, msg, _ = c.Read(ctx)
	fmt.Println(string(msg))
	_ = c.Close(websocket.StatusNormalClosure, "")
	// Output:
	// subprotocol: wsguard.v1
	// welcome alice
	// alice said hi
}

func ExampleNewHMACVerifier() {
	v, err := auth.NewHMACVerifier(exampleKey, auth.WithAudience("orders"))
	if err != nil {
		panic(err)
	}
	tok, _ := auth.Sign(jwa.HS256(), exampleKey, auth.Claims{
		Subject: "alice", Audience: []string{"orders"}, Expiry: time.Now().Add(time.Hour),
	})
	p, err := v.Verify(context.Background(), tok)
	fmt.Println(p.Subject, err)

	_, err = auth.NewHMACVerifier([]byte("too short"))
	fmt.Println(err != nil)
	// Output:
	// alice <nil>
	// true
}
