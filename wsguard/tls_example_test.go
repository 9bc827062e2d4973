package wsguard_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/internal/localca"
	"github.com/wsguard/kit/wsguard"
)

func ExampleWithTLS() {
	// cert.pem and key.pem as certbot or go run ./examples/certs writes
	// them; here a CA made for the example.
	dir, _ := os.MkdirTemp("", "wsguard-example")
	defer os.RemoveAll(dir)
	files, err := localca.WriteDir(dir, "127.0.0.1")
	if err != nil {
		fmt.Println(err)
		return
	}
	quiet := slog.New(slog.DiscardHandler)
	ws := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.SendText(ctx, "Server received: "+string(m.Data))
	}), wsguard.WithLogger(quiet))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- wsguard.Serve(ctx, ln, ws, wsguard.WithTLS(files.CertFile, files.KeyFile)) }()
	defer func() { stop(); <-served }()

	// The client trusts the CA, as examples/secure/client -ca does.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: files.CA.Pool()}}}
	c, _, err := websocket.Dial(context.Background(), "wss://"+ln.Addr().String()+"/", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	_ = c.Write(context.Background(), websocket.MessageText, []byte("hello over TLS"))
	_, reply, _ := c.Read(context.Background())
	fmt.Println(string(reply))
	// Output:
	// Server received: hello over TLS
}
