package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"

	"github.com/wsguard/kit/auth"
	"github.com/wsguard/kit/internal/localca"
	"github.com/wsguard/kit/wsguard"
)

// startTLSServer is startServer over TLS with a certificate of a CA made
// for the test, and returns its wss:// URL and the CA file.
func startTLSServer(t *testing.T) (url, caFile string) {
	t.Helper()
	files, err := localca.WriteDir(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := files.Leaf.TLS()
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(jwa.HS256(), secret)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	sessions := auth.NewSessions(v)
	echo := wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.SendText(ctx, "Server received: "+string(m.Data))
	})
	srv := wsguard.New(echo, append(sessions.Options(),
		wsguard.WithSubprotocols("wsguard.v1"), wsguard.WithLogger(quiet))...)
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	ts.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	ts.StartTLS()
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		ts.Close()
	})
	return "wss" + strings.TrimPrefix(ts.URL, "https") + "/", files.CAFile
}

// TestClientTLS: a wss:// server with a private CA is reached with -ca
// and refused without it; -insecure-skip-verify connects with a warning;
// flags that would be ignored are errors.
func TestClientTLS(t *testing.T) {
	t.Parallel()
	url, caFile := startTLSServer(t)
	_, otherCA := startTLSServer(t)
	tok, err := auth.Sign(jwa.HS256(), secret, auth.Claims{Subject: "demo", Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const echoed = "Server received: hello\n"
	tests := []struct {
		name    string
		args    []string
		out     string
		stderr  string
		wantErr string
	}{
		{"the CA", []string{"-url", url, "-ca", caFile}, echoed, "", ""},
		{"system CAs only", []string{"-url", url}, "", "", "certificate signed by unknown authority"},
		{"another CA", []string{"-url", url, "-ca", otherCA}, "", "", "certificate signed by unknown authority"},
		{"skip verification", []string{"-url", url, "-insecure-skip-verify"}, echoed, "not verified", ""},
		{"both", []string{"-url", url, "-ca", caFile, "-insecure-skip-verify"}, "", "", "-ca and -insecure-skip-verify together"},
		{"CA with ws://", []string{"-url", "ws" + strings.TrimPrefix(url, "wss"), "-ca", caFile}, "", "", "apply to a wss:// URL"},
		{"missing CA file", []string{"-url", url, "-ca", caFile + ".none"}, "", "", "-ca: open "},
		{"no certificate in the file", []string{"-url", url, "-ca", notPEM}, "", "", "no PEM certificate in the file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, stderr bytes.Buffer
			err := run(ctx, append(tt.args, "-token", string(tok)), "", strings.NewReader("hello\n"), &out, &stderr)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if out.String() != tt.out || !strings.Contains(stderr.String(), tt.stderr) {
				t.Fatalf("printed %q and %q, want %q and %q", out.String(), stderr.String(), tt.out, tt.stderr)
			}
		})
	}
}

// TestClientWithoutToken: with no token the client connects without one,
// for a server that asks for none.
func TestClientWithoutToken(t *testing.T) {
	t.Parallel()
	ws := wsguard.New(wsguard.HandlerFunc(func(ctx context.Context, c *wsguard.Conn, m *wsguard.Message) error {
		return c.SendText(ctx, "no token: "+string(m.Data))
	}), wsguard.WithLogger(slog.New(slog.DiscardHandler)))
	var header atomic.Value
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header.Store(r.Header.Values("Authorization"))
		ws.ServeHTTP(w, r)
	}))
	defer func() {
		_ = ws.Shutdown(context.Background())
		ts.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-url", "ws" + strings.TrimPrefix(ts.URL, "http") + "/"}, "", strings.NewReader("hi\n"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if out.String() != "no token: hi\n" {
		t.Fatalf("printed %q", out.String())
	}
	if got := header.Load().([]string); len(got) != 0 {
		t.Fatalf("sent Authorization %q", got)
	}
}
