package main

import (
	"context"
	"crypto/tls"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/kit/internal/localca"
)

// TestTLSDemoClient: with -tls-cert and -tls-key the server listens on
// wss://, and the client command it prints, which trusts the CA beside
// the certificate with -ca, connects and authenticates. Not parallel, as
// TestDemoToken: it builds the client.
func TestTLSDemoClient(t *testing.T) {
	files, err := localca.WriteDir(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	url, out := startRun(t, nil, "-tls-cert", files.CertFile, "-tls-key", files.KeyFile)
	if !strings.HasPrefix(url, "wss://127.0.0.1:") {
		t.Fatalf("listening on %s", url)
	}
	tok := out[2]
	cmdLine := strings.TrimPrefix(out[3], "secure: try it from the repository root (type lines, Ctrl-D to quit): ")
	if want := "go run ./examples/secure/client -url " + url + " -ca " + files.CAFile + " -token " + tok; cmdLine != want {
		t.Fatalf("printed command %q, want %q", cmdLine, want)
	}
	if want := "secure: or with websocat: SSL_CERT_FILE=" + files.CAFile + " websocat -H 'Authorization: Bearer " + tok + "' " + url; out[4] != want {
		t.Fatalf("printed %q, want %q", out[4], want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := strings.Fields(strings.Replace(cmdLine, "./examples/secure/client", "./client", 1))
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = strings.NewReader("hello\n")
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdLine, err, got)
	}
	if string(got) != "Authenticated!\nServer received: hello\n" {
		t.Fatalf("client printed %q", got)
	}
}

// TestCleartextWarning: tokens served over ws:// on an address other
// hosts reach are warned about once at start-up; on loopback, or over
// TLS, they are not.
func TestCleartextWarning(t *testing.T) {
	t.Parallel()
	files, err := localca.WriteDir(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	const warning = "tokens travel in clear unless a TLS-terminating proxy is in front (trust it with WithRealIP / trusted proxies)"
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"ws on every address", []string{"-addr", "0.0.0.0:0"}, 1},
		{"wss on every address", []string{"-addr", "0.0.0.0:0", "-tls-cert", files.CertFile, "-tls-key", files.KeyFile}, 0},
		{"ws on loopback", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logFile := filepath.Join(t.TempDir(), "secure.log")
			url, _ := startRun(t, map[string]string{secretEnv: string(secret)}, append(tc.args, "-log-file", logFile)...)
			// Serve warns before it serves: a response shows start-up is
			// over.
			u, err := neturl.Parse(strings.Replace(url, "ws", "http", 1))
			if err != nil {
				t.Fatal(err)
			}
			u.Host = "127.0.0.1:" + u.Port()
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: files.CA.Pool()}}, Timeout: 5 * time.Second}
			resp, err := client.Get(u.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			client.CloseIdleConnections()
			b, _ := os.ReadFile(logFile)
			if n := strings.Count(string(b), warning); n != tc.want {
				t.Fatalf("%d warnings, want %d:\n%s", n, tc.want, b)
			}
		})
	}
}
