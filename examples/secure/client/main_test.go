package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"go.uber.org/goleak"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/wsguard"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var secret = []byte("client-secret-of-32-bytes-long!!")

// startServer serves what examples/secure serves: a greeting on
// authentication, then an echo.
func startServer(t *testing.T) string {
	t.Helper()
	v, err := auth.NewVerifier(jwa.HS256(), secret)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	sessions := auth.NewSessions(v, auth.WithFirstMessage(0),
		auth.OnAuthenticated(func(ctx context.Context, c *wsguard.Conn, _ *auth.Principal) error {
			return c.SendText(ctx, "Authenticated!")
		}))
	echo := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.SendText(ctx, "Server received: "+string(m.Data))
	})
	srv := wsguard.New(echo, append(sessions.Options(),
		wsguard.WithSubprotocols("wsguard.v1"), wsguard.WithLogger(quiet))...)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/"
}

func TestClient(t *testing.T) {
	t.Parallel()
	url := startServer(t)
	good, err := auth.Sign(jwa.HS256(), secret, auth.Claims{Subject: "demo", Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     string
		out     string
		wantErr string
	}{
		{"header", []string{"-token", string(good)}, "", "Authenticated!\nServer received: hello\n", ""},
		{"token from the environment", nil, string(good), "Authenticated!\nServer received: hello\n", ""},
		{"subprotocol", []string{"-via", "subprotocol", "-token", string(good)}, "", "Authenticated!\nServer received: hello\n", ""},
		{"first message", []string{"-via", "message", "-token", string(good)}, "", "Authenticated!\nServer received: hello\n", ""},
		{"bad token in the header", []string{"-token", "x.y.z"}, "", "", "handshake refused: 401 Unauthorized invalid token"},
		{"bad token as first message", []string{"-via", "message", "-token", "x.y.z"}, "", "", "closed by the server: 4401 invalid token"},
		{"unknown place", []string{"-via", "carrier-pigeon"}, "", "", "want header, subprotocol or message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out bytes.Buffer
			err := run(ctx, append([]string{"-url", url}, tt.args...), tt.env, strings.NewReader("hello\n"), &out, io.Discard)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if out.String() != tt.out {
				t.Fatalf("printed %q, want %q", out.String(), tt.out)
			}
		})
	}
}
