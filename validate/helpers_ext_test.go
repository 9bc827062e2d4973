package validate_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// serve runs h behind a wsguard server on a loopback httptest server and
// returns its ws:// URL. The server is drained and closed when the test
// ends.
func serve(t *testing.T, h wsguard.Handler, logs *wstest.Logs, opts ...wsguard.Option) string {
	t.Helper()
	opts = append([]wsguard.Option{
		wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug)),
		wsguard.WithHandshakeRate(1000, 1000),
	}, opts...)
	srv := wsguard.New(h, opts...)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	sendBytes(t, c, []byte(msg))
}

func sendBytes(t *testing.T, c *websocket.Conn, msg []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// read returns the next message, or fails the test.
func read(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	s, err := tryRead(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return s
}

func tryRead(c *websocket.Conn) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	return string(b), err
}

// closeStatus reads until the server closes the connection and returns
// the status it sent; messages before the close are skipped.
func closeStatus(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	for {
		_, err := tryRead(c)
		if err == nil {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("the server did not close the connection")
		}
		return websocket.CloseStatus(err)
	}
}
