// Command client is a minimal client for examples/secure and
// examples/wrap: it presents a token, sends each line of stdin as a text
// message and prints every message it receives, until stdin ends or the
// server closes the connection.
//
//	go run ./examples/secure/client -url ws://127.0.0.1:8888/ -token <jwt>
//
// -via chooses where the token goes: "header" (Authorization: Bearer),
// "subprotocol" (bearer.<jwt> beside wsguard.v1, as a browser sends it) or
// "message" (the first text message). The token may also come from the
// environment variable WSGUARD_TOKEN, which keeps it out of the process
// list.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/coder/websocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv("WSGUARD_TOKEN"), os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, envToken string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "ws://127.0.0.1:8888/", "server URL")
	token := fs.String("token", envToken, "bearer token (default $WSGUARD_TOKEN)")
	via := fs.String("via", "header", "where the token goes: header, subprotocol or message")
	linger := fs.Duration("linger", 500*time.Millisecond, "how long to wait for replies after stdin ends")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := &websocket.DialOptions{Subprotocols: []string{"wsguard.v1"}}
	switch *via {
	case "header":
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + *token}}
	case "subprotocol":
		opts.Subprotocols = append(opts.Subprotocols, "bearer."+*token)
	case "message":
	default:
		return fmt.Errorf("-via %q: want header, subprotocol or message", *via)
	}
	c, resp, err := websocket.Dial(ctx, *url, opts)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("handshake refused: %s %s", resp.Status, b)
		}
		return err
	}
	defer c.CloseNow()
	if *via == "message" {
		if err := c.Write(ctx, websocket.MessageText, []byte(*token)); err != nil {
			return err
		}
	}

	received := make(chan error, 1)
	go func() {
		for {
			_, msg, err := c.Read(ctx)
			if err != nil {
				received <- err
				return
			}
			fmt.Fprintln(stdout, string(msg))
		}
	}()
	lines := make(chan string)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return finish(c, received, *linger)
			}
			if err := c.Write(ctx, websocket.MessageText, []byte(line)); err != nil {
				return closed(<-received)
			}
		case err := <-received:
			return closed(err)
		}
	}
}

// finish closes the connection once stdin has ended and the replies to
// the last lines have had linger to arrive.
func finish(c *websocket.Conn, received <-chan error, linger time.Duration) error {
	t := time.NewTimer(linger)
	defer t.Stop()
	select {
	case err := <-received:
		return closed(err)
	case <-t.C:
	}
	err := c.Close(websocket.StatusNormalClosure, "")
	<-received
	return err
}

// closed reports how the connection ended: nil for a normal closure.
func closed(err error) error {
	switch s := websocket.CloseStatus(err); s {
	case websocket.StatusNormalClosure:
		return nil
	case -1:
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	default:
		var ce websocket.CloseError
		errors.As(err, &ce)
		return fmt.Errorf("closed by the server: %d %s", s, ce.Reason)
	}
}
