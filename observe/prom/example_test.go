package prom_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/kit/observe/prom"
	"github.com/wsguard/kit/wsguard"
)

// Metrics go to a registry of their own, served on a listener apart from
// the WebSocket one. One client connects, sends a message, reads the echo
// and leaves; the scrape then shows its counts.
func Example() {
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	obs, err := prom.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	srv := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.Send(ctx, m.Type, m.Data)
	}), wsguard.WithObserver(obs), wsguard.WithLogger(logger))
	app := httptest.NewServer(srv)
	defer app.Close()
	addr, stop, err := prom.Listen("127.0.0.1:0", reg, logger)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(app.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		log.Fatal(err)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		log.Fatal(err)
	}
	// The server ends the connection once it has read the close frame; its
	// loop reports the connection's last events before it leaves Open.
	for srv.Open() > 0 {
		time.Sleep(time.Millisecond)
	}
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}

	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	for l := range strings.Lines(string(body)) {
		if !strings.HasPrefix(l, "#") && (strings.HasPrefix(l, "wsguard_connections") ||
			strings.HasPrefix(l, "wsguard_handshakes") || strings.HasPrefix(l, "wsguard_messages_total")) {
			fmt.Print(l)
		}
	}
	// Output:
	// wsguard_connections_closed_total{code="canceled",status="1000"} 1
	// wsguard_connections_open 0
	// wsguard_handshakes_total{code="",result="accepted"} 1
	// wsguard_messages_total{direction="in"} 1
	// wsguard_messages_total{direction="out"} 1
}
