package wsguard_test

import (
	"context"
	"fmt"
	"net"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/wsguard"
)

func ExampleServe() {
	ws := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.SendText(ctx, "Server received: "+string(m.Data))
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	// In a program, ctx is signal.NotifyContext's: SIGTERM drains.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- wsguard.Serve(ctx, ln, ws) }()

	c, _, err := websocket.Dial(context.Background(), "ws://"+ln.Addr().String()+"/", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	_ = c.Write(context.Background(), websocket.MessageText, []byte("hello"))
	_, reply, _ := c.Read(context.Background())
	fmt.Println(string(reply))

	stop()
	_, _, err = c.Read(context.Background())
	fmt.Println(websocket.CloseStatus(err), <-served)
	// Output:
	// Server received: hello
	// StatusGoingAway <nil>
}
