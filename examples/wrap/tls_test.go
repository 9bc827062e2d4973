package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/kit/internal/localca"
)

// TestTLS: with -tls-cert and -tls-key the legacy handler is served over
// wss://, the printed client command trusts the CA beside the
// certificate, its demo token works over TLS, and TLS 1.1 is refused.
func TestTLS(t *testing.T) {
	t.Parallel()
	files, err := localca.WriteDir(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-tls-cert", files.CertFile, "-tls-key", files.KeyFile},
			func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()
	br := bufio.NewReader(pr)
	var lines []string
	for range 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(line))
	}
	go io.Copy(io.Discard, br)
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	url := strings.TrimPrefix(lines[0], "wrap: listening on ")
	if !strings.HasPrefix(url, "wss://127.0.0.1:") {
		t.Fatalf("listening on %s", url)
	}
	f := strings.Fields(lines[2])
	if len(f) != 9 || f[4] != url || f[5] != "-ca" || f[6] != files.CAFile {
		t.Fatalf("printed %q", lines[2])
	}

	d := websocket.Dialer{
		Subprotocols:     []string{"wsguard.v1"},
		HandshakeTimeout: 5 * time.Second,
		TLSClientConfig:  &tls.Config{RootCAs: files.CA.Pool()},
	}
	c, _, err := d.Dial(url, bearer(f[8]))
	if err != nil {
		t.Fatalf("the demo token does not work over TLS: %v", err)
	}
	echoes(t, c, "hello over TLS")
	c.Close()

	old := &tls.Config{RootCAs: files.CA.Pool(), MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}
	if nc, err := tls.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "wss://"), "/"), old); err == nil {
		nc.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
}
