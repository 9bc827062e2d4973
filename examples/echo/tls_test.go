package main

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/internal/localca"
)

// TestTLS: with -tls-cert and -tls-key the example serves wss://, prints
// a client command that trusts the CA beside the certificate, and echoes
// to a client that trusts that CA only; TLS 1.1 is refused.
func TestTLS(t *testing.T) {
	t.Parallel()
	files, err := localca.WriteDir(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := startEcho(t, "-tls-cert", files.CertFile, "-tls-key", files.KeyFile)
	if !strings.HasPrefix(srv.url, "wss://127.0.0.1:") {
		t.Fatalf("listening on %s", srv.url)
	}
	if want := "go run ./examples/secure/client -url " + srv.url + " -ca " + files.CAFile; srv.client != want {
		t.Fatalf("client command %q, want %q", srv.client, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: files.CA.Pool()}}}
	c, _, err := websocket.Dial(ctx, srv.url, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != "Server received: hi" {
		t.Fatalf("read %q, %v", got, err)
	}
	c.Close(websocket.StatusNormalClosure, "")

	old := &tls.Config{RootCAs: files.CA.Pool(), MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}
	if nc, err := tls.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(srv.url, "wss://"), "/"), old); err == nil {
		nc.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
}

// TestTLSBadPair: a pair that does not load stops the example at start.
func TestTLSBadPair(t *testing.T) {
	t.Parallel()
	files, err := localca.WriteDir(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "none.pem")
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-tls-cert", missing, "-tls-key", files.KeyFile}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("run = %v", err)
	}
}
