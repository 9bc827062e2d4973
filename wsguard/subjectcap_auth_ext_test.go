package wsguard_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/wsguard"
)

// TestSubjectConnLimitEveryTokenPlace checks the cap per subject with
// auth.Sessions, whether the token comes with the handshake or as the
// first message.
func TestSubjectConnLimitEveryTokenPlace(t *testing.T) {
	t.Parallel()
	secret := []byte("test-secret-of-exactly-32-bytes!")
	v, err := auth.NewVerifier(jwa.HS256(), secret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Sign(jwa.HS256(), secret, auth.Claims{Subject: "alice", Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// connect authenticates in place and reports the close status, or -1
	// when the connection is open and served.
	connect := func(t *testing.T, url, place string) websocket.StatusCode {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		opts := &websocket.DialOptions{}
		if place == "header" {
			opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + string(tok)}}
		}
		c, resp, err := websocket.Dial(ctx, url, opts)
		if err != nil {
			if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
				return errlog.CloseResourceExhausted
			}
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.CloseNow() })
		if place == "message" {
			if err := c.Write(ctx, websocket.MessageText, []byte(tok)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			return websocket.CloseStatus(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
		return -1
	}
	tests := []struct{ first, second string }{
		{"header", "header"},
		{"header", "message"},
		{"message", "header"},
		{"message", "message"},
	}
	for _, tt := range tests {
		t.Run(tt.first+" then "+tt.second, func(t *testing.T) {
			t.Parallel()
			sessions := auth.NewSessions(v, auth.WithFirstMessage(0))
			lim := wsguard.NewSubjectConnLimit(1, nil)
			ts := start(t, echo, append(sessions.Options(), wsguard.WithHandshake(lim.Handler))...)
			if got := connect(t, ts.URL, tt.first); got != -1 {
				t.Fatalf("first connection: close %d", got)
			}
			if got := connect(t, ts.URL, tt.second); got != errlog.CloseResourceExhausted {
				t.Errorf("second connection of alice: %d, want 4429 (or 429)", got)
			}
		})
	}
}
