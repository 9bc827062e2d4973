package wsguard_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/wsguard"
)

func ExampleNew() {
	// Every default guard is on: Origin check, handshake rate, connection
	// caps, 32 KiB read limit, UTF-8, message rate, keepalive, recovery.
	srv := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.SendText(ctx, "Server received: "+string(m.Data))
	}))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Shutdown(context.Background())

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	_ = c.Write(ctx, websocket.MessageText, []byte("hello"))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))
	// Output: Server received: hello
}

func ExampleChain() {
	logType := func(next wsguard.Handler) wsguard.Handler {
		return wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
			fmt.Println("outer sees", len(m.Data), "bytes")
			return next.ServeMessage(ctx, c, m)
		})
	}
	h := wsguard.NewChain(logType).ThenFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		fmt.Println("handler sees", string(m.Data))
		return nil
	})
	_ = h.ServeMessage(context.Background(), nil, &wsguard.Message{Type: wsguard.MessageText, Data: []byte("hi")})
	// Output:
	// outer sees 2 bytes
	// handler sees hi
}
