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
// list. Without a token it connects without one (examples/echo).
//
// A wss:// URL is verified against the system's CAs, or with -ca FILE
// against the CA certificates in that PEM file only (a private CA, such as
// the one go run ./examples/certs writes):
//
//	go run ./examples/secure/client -url wss://localhost:8888/ -ca tls/ca.pem -token <jwt>
//
// -insecure-skip-verify turns the verification off, for a test against a
// certificate you cannot get the CA of: anyone on the path can then read
// and change the connection, token included.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
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
	caFile := fs.String("ca", "", "PEM file of the CA certificates to trust for a wss:// URL, instead of the system's")
	insecure := fs.Bool("insecure-skip-verify", false, "do not verify the server's certificate (INSECURE: anyone on the path can read the token)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := &websocket.DialOptions{Subprotocols: []string{"wsguard.v1"}}
	tlsConfig, err := clientTLS(*url, *caFile, *insecure)
	if err != nil {
		return err
	}
	if tlsConfig != nil {
		if *insecure {
			fmt.Fprintln(stderr, "client: -insecure-skip-verify: the server's certificate is not verified")
		}
		opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	}
	switch *via {
	case "header":
		if *token != "" {
			opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + *token}}
		}
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

// clientTLS returns the TLS settings -ca and -insecure-skip-verify ask
// for, nil for the default ones. Either flag with a ws:// URL, or both
// together, is an error: one of them would be ignored.
func clientTLS(url, caFile string, insecure bool) (*tls.Config, error) {
	if caFile == "" && !insecure {
		return nil, nil
	}
	if !strings.HasPrefix(url, "wss://") {
		return nil, fmt.Errorf("-ca and -insecure-skip-verify apply to a wss:// URL, not %q", url)
	}
	if insecure {
		if caFile != "" {
			return nil, errors.New("-ca and -insecure-skip-verify together: the CA would be ignored")
		}
		return &tls.Config{InsecureSkipVerify: true}, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("-ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca %s: no PEM certificate in the file", caFile)
	}
	return &tls.Config{RootCAs: roots}, nil
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
