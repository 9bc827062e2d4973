package wsguard_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/localca"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// testPKI is a CA made for one test and the files of a leaf it signed for
// 127.0.0.1.
type testPKI struct {
	ca                *localca.CA
	certFile, keyFile string
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := localca.New("wsguard test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &testPKI{ca: ca, certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	p.renew(t)
	return p
}

// renew writes a new leaf over the files, as a certificate renewal does,
// and returns it.
func (p *testPKI) renew(t *testing.T) *localca.Leaf {
	t.Helper()
	leaf, err := p.ca.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	writeRenewed(t, p.certFile, leaf.CertPEM)
	writeRenewed(t, p.keyFile, leaf.KeyPEM)
	return leaf
}

// writeRenewed replaces the file the way certbot's renewal does (a new
// file moved over the old one), dated a second after the old one so that
// a filesystem with coarse timestamps sees the change too.
func writeRenewed(t *testing.T, name string, data []byte) {
	t.Helper()
	next := time.Now()
	if fi, err := os.Stat(name); err == nil && !fi.ModTime().Before(next) {
		next = fi.ModTime().Add(time.Second)
	}
	tmp := name + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, next, next); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// clientTLS trusts only the test CA.
func (p *testPKI) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: p.ca.Pool()}
}

// handshake makes a TLS connection to addr with cfg and returns its state.
func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

// servedSerial is the serial number of the certificate addr serves.
func servedSerial(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	st, err := handshake(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st.PeerCertificates[0].SerialNumber.String()
}

func dialWSS(ctx context.Context, url string, cfg *tls.Config) (*websocket.Conn, *http.Response, error) {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
}

// TestServeTLS: with WithTLS, Serve speaks wss:// with the documented
// settings: TLS 1.3 when the client offers it, 1.2 when it does not,
// http/1.1 by ALPN even to a client that prefers h2, and a WebSocket
// that echoes.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	logs := &wstest.Logs{}
	ws := wsguard.New(echoHandler(), wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug)))
	addr, stop := serveTest(t, ws, wsguard.WithTLS(pki.certFile, pki.keyFile))

	for _, tc := range []struct {
		name        string
		max         uint16
		wantVersion uint16
	}{
		{"TLS 1.3", 0, tls.VersionTLS13},
		{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := pki.clientTLS()
			cfg.MaxVersion = tc.max
			cfg.NextProtos = []string{"h2", "http/1.1"}
			st, err := handshake(addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != tc.wantVersion || st.NegotiatedProtocol != "http/1.1" {
				t.Fatalf("version %s, ALPN %q; want %s, http/1.1", tls.VersionName(st.Version), st.NegotiatedProtocol, tls.VersionName(tc.wantVersion))
			}
		})
	}

	t.Run("wss echo", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := dialWSS(ctx, "wss://"+addr+"/", pki.clientTLS())
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte("over TLS")); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || string(got) != "over TLS" {
			t.Fatalf("read %q, %v", got, err)
		}
		c.Close(websocket.StatusNormalClosure, "")
	})

	t.Run("untrusted", func(t *testing.T) {
		t.Parallel()
		// A client that does not trust the CA does not connect.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c, _, err := dialWSS(ctx, "wss://"+addr+"/", &tls.Config{RootCAs: x509.NewCertPool()}); err == nil {
			c.CloseNow()
			t.Fatal("a client without the CA connected")
		}
	})

	t.Run("plain ws", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil); err == nil {
			c.CloseNow()
			t.Fatal("a plain ws:// client connected to the TLS port")
		}
	})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// TestServeTLSRefusesOldVersions: a client offering TLS 1.1 or below is
// refused in the handshake, and the refusal is logged once, classified.
func TestServeTLSRefusesOldVersions(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	logs := &wstest.Logs{}
	ws := wsguard.New(echoHandler(), wsguard.WithLogger(errlog.NewLogger(logs, slog.LevelDebug)))
	addr, _ := serveTest(t, ws, wsguard.WithTLS(pki.certFile, pki.keyFile))
	for _, tc := range []struct {
		name string
		v    uint16
	}{
		{"TLS 1.0", tls.VersionTLS10},
		{"TLS 1.1", tls.VersionTLS11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pki.clientTLS()
			cfg.MinVersion, cfg.MaxVersion = tc.v, tc.v
			before := len(logs.Find(t, "TLS handshake refused"))
			if st, err := handshake(addr, cfg); err == nil {
				t.Fatalf("handshake with %s succeeded with %s", tc.name, tls.VersionName(st.Version))
			}
			// The server logs after the client has seen the refusal.
			var lines []map[string]any
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if lines = logs.Find(t, "TLS handshake refused"); len(lines) > before {
					break
				}
			}
			if len(lines) != before+1 {
				t.Fatalf("%d refusal lines, want %d:\n%s", len(lines), before+1, logs.String())
			}
			l := lines[len(lines)-1]
			if l["code"] != "protocol" || l["level"] != "INFO" || !strings.Contains(l["err"].(string), "client offered only unsupported versions") {
				t.Fatalf("refusal logged as %v", l)
			}
		})
	}
}

// TestCertReload: a renewed pair on disk is served to new connections
// within the reload interval; a pair that does not load keeps the one in
// use and is logged once, however many handshakes follow.
func TestCertReload(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	logs := &wstest.Logs{}
	const interval = 50 * time.Millisecond
	addr, _ := serveTest(t, http.NotFoundHandler(),
		wsguard.WithTLS(pki.certFile, pki.keyFile), wsguard.WithCertReload(interval),
		wsguard.WithServeLogger(errlog.NewLogger(logs, slog.LevelDebug)))
	cfg := pki.clientTLS()
	first := servedSerial(t, addr, cfg)

	// servedWithin polls until addr serves want, or fails after a few
	// seconds: the interval plus however late a loaded machine runs us.
	servedWithin := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := servedSerial(t, addr, cfg)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("serving %s, want %s", got, want)
			}
			time.Sleep(interval / 5)
		}
	}

	renewed := pki.renew(t)
	servedWithin(renewed.Cert.SerialNumber.String())
	if renewed.Cert.SerialNumber.String() == first {
		t.Fatal("the renewal made the same serial")
	}

	// A half-done renewal: a new certificate beside the old key.
	half, err := pki.ca.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	writeRenewed(t, pki.certFile, half.CertPEM)
	for range 5 {
		time.Sleep(interval)
		if got := servedSerial(t, addr, cfg); got != renewed.Cert.SerialNumber.String() {
			t.Fatalf("a broken pair replaced the one in use: serving %s", got)
		}
	}
	broken := logs.Find(t, "TLS certificate did not load: serving with the previous one")
	if len(broken) != 1 || broken[0]["level"] != "ERROR" || !strings.Contains(broken[0]["err"].(string), "private key does not match") {
		t.Fatalf("want one error line for the broken pair, got %v", broken)
	}

	// The renewal completes.
	writeRenewed(t, pki.keyFile, half.KeyPEM)
	servedWithin(half.Cert.SerialNumber.String())
	if n := len(logs.Find(t, "TLS certificate loaded")); n != 3 {
		t.Errorf("%d lines for a loaded pair, want 3 (start, renewal, completed renewal)", n)
	}
}

// TestCertReloadOff: with WithCertReload(0) the files are not looked at
// on handshakes.
func TestCertReloadOff(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	addr, _ := serveTest(t, http.NotFoundHandler(),
		wsguard.WithTLS(pki.certFile, pki.keyFile), wsguard.WithCertReload(0),
		wsguard.WithServeLogger(errlog.NewLogger(&wstest.Logs{}, slog.LevelDebug)))
	first := servedSerial(t, addr, pki.clientTLS())
	pki.renew(t)
	time.Sleep(100 * time.Millisecond)
	if got := servedSerial(t, addr, pki.clientTLS()); got != first {
		t.Fatalf("serving %s after a renewal with reload off, want %s", got, first)
	}
}

// TestServeTLSMistakes: a missing file name is a configuration mistake,
// and a pair that does not load stops Serve before it serves; either way
// Serve closes the listener.
func TestServeTLSMistakes(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	missing := filepath.Join(t.TempDir(), "none.pem")
	for _, tc := range []struct {
		name      string
		cert, key string
		want      string
	}{
		{"no key", pki.certFile, "", `wsguard: WithTLS("` + pki.certFile + `", ""): both the certificate and the key file are required`},
		{"no cert", "", pki.keyFile, `wsguard: WithTLS("", "` + pki.keyFile + `"): both the certificate and the key file are required`},
		{"missing file", missing, pki.keyFile, "wsguard: loading the TLS certificate " + missing + " and key " + pki.keyFile + ": open " + missing + ": no such file or directory"},
		{"swapped", pki.keyFile, pki.certFile, "wsguard: loading the TLS certificate " + pki.keyFile + " and key " + pki.certFile + ": tls: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			err = wsguard.Serve(context.Background(), ln, http.NotFoundHandler(),
				wsguard.WithTLS(tc.cert, tc.key), wsguard.WithServeLogger(errlog.NewLogger(&wstest.Logs{}, slog.LevelDebug)))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Serve = %v, want %q", err, tc.want)
			}
			if _, err := ln.Accept(); err == nil {
				t.Fatal("the listener is still open")
			}
		})
	}
	t.Run("NewHTTPServer panics", func(t *testing.T) {
		t.Parallel()
		defer func() {
			if p := recover(); p == nil || !strings.Contains(p.(error).Error(), "both the certificate and the key file are required") {
				t.Fatalf("recovered %v", p)
			}
		}()
		wsguard.NewHTTPServer(http.NotFoundHandler(), wsguard.WithTLS("", ""))
	})
}

// TestNewHTTPServerTLS: the server of NewHTTPServer carries the TLS
// settings, for http.Server.ServeTLS with no file names.
func TestNewHTTPServerTLS(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	hs := wsguard.NewHTTPServer(http.NotFoundHandler(), wsguard.WithTLS(pki.certFile, pki.keyFile),
		wsguard.WithServeLogger(errlog.NewLogger(&wstest.Logs{}, slog.LevelDebug)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- hs.ServeTLS(ln, "", "") }()
	defer func() {
		_ = hs.Close()
		<-done
	}()
	for _, tc := range []struct {
		name string
		min  uint16
		ok   bool
	}{{"TLS 1.1", tls.VersionTLS11, false}, {"TLS 1.2", tls.VersionTLS12, true}} {
		cfg := pki.clientTLS()
		cfg.MinVersion, cfg.MaxVersion = tc.min, tc.min
		cfg.NextProtos = []string{"h2", "http/1.1"}
		st, err := handshake(ln.Addr().String(), cfg)
		if (err == nil) != tc.ok {
			t.Fatalf("%s: handshake error %v", tc.name, err)
		}
		if tc.ok && st.NegotiatedProtocol != "http/1.1" {
			t.Fatalf("%s: ALPN %q", tc.name, st.NegotiatedProtocol)
		}
	}
}

// TestCleartextWarning: serving credentials without TLS on an address
// other hosts reach logs one warning naming the proxy alternative, and
// nothing otherwise.
func TestCleartextWarning(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	const warning = "serving ws:// without TLS on a non-loopback address: tokens travel in clear unless a TLS-terminating proxy is in front (trust it with WithRealIP / trusted proxies), or serve wss:// with WithTLS"
	for _, tc := range []struct {
		name string
		addr string
		opts []wsguard.ServeOption
		want int
	}{
		{"credentials on every address", "0.0.0.0:0", []wsguard.ServeOption{wsguard.WithCredentials()}, 1},
		{"credentials on loopback", "127.0.0.1:0", []wsguard.ServeOption{wsguard.WithCredentials()}, 0},
		{"credentials over TLS", "0.0.0.0:0", []wsguard.ServeOption{wsguard.WithCredentials(), wsguard.WithTLS(pki.certFile, pki.keyFile)}, 0},
		{"no credentials", "0.0.0.0:0", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &wstest.Logs{}
			ln, err := net.Listen("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- wsguard.Serve(ctx, ln, http.NotFoundHandler(),
					append(tc.opts, wsguard.WithServeLogger(errlog.NewLogger(logs, slog.LevelDebug)))...)
			}()
			// A request served shows that start-up is over.
			port := ln.Addr().(*net.TCPAddr).Port
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.clientTLS()}, Timeout: 5 * time.Second}
			scheme := "http"
			if len(tc.opts) > 1 {
				scheme = "https"
			}
			resp, err := client.Get(scheme + "://127.0.0.1:" + strconv.Itoa(port) + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			client.CloseIdleConnections()
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got := logs.Find(t, warning)
			if len(got) != tc.want {
				t.Fatalf("%d warnings, want %d:\n%s", len(got), tc.want, logs.String())
			}
			if tc.want == 1 && got[0]["level"] != "WARN" {
				t.Fatalf("logged at %v", got[0]["level"])
			}
		})
	}
}
