package wsguard

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/wsguard/kit/errlog"
)

// DefaultCertReloadInterval is how often, at most, the server built with
// [WithTLS] looks at its certificate and key files for a renewed pair.
const DefaultCertReloadInterval = time.Minute

// WithTLS serves wss:// (HTTPS) with the certificate and key in these PEM
// files, as certbot, cert-manager or the local CA of examples/certs write
// them. The TLS settings are fixed:
//
//   - TLS 1.2 at least (TLS 1.3 is preferred by Go whenever the client
//     offers it); a client offering only TLS 1.1 or below is refused during
//     the handshake;
//   - Go's default cipher suites, which have forward secrecy and AEADs only;
//   - ALPN "http/1.1" only: a WebSocket upgrade needs HTTP/1.1 and the
//     transport does not speak WebSockets over HTTP/2 (RFC 8441), so HTTP/2
//     is never negotiated;
//   - no renegotiation: Go's TLS server never renegotiates.
//
// A renewed pair on disk is picked up for new connections without a
// restart: the files are looked at (modification time, size, identity)
// on a handshake at most once per [DefaultCertReloadInterval] (see
// [WithCertReload]), and at once when the process gets SIGHUP while
// [Serve] or [ListenAndServe] runs. Connections already open keep the
// certificate they were made with. A pair that does not load (a key that
// does not match, a file half written) keeps the previous one in use and
// logs one error line, until the files change again.
//
// [Serve] and [ListenAndServe] load the pair before serving and return
// the error if it does not load. [NewHTTPServer] sets the server's
// TLSConfig, for http.Server.ServeTLS(ln, "", ""); a pair that does not
// load there is logged and every handshake fails until it does.
//
// Both names are required: an empty one is a configuration mistake
// (Serve and ListenAndServe return it, NewHTTPServer panics with it).
func WithTLS(certFile, keyFile string) ServeOption {
	return func(c *serveConfig) {
		if certFile == "" || keyFile == "" {
			c.mistake = misconfiguration(fmt.Sprintf("wsguard: WithTLS(%q, %q): both the certificate and the key file are required", certFile, keyFile))
			return
		}
		c.certFile, c.keyFile = certFile, keyFile
	}
}

// WithCertReload sets how often, at most, a server with [WithTLS] looks
// for a renewed certificate; the default is [DefaultCertReloadInterval].
// Zero or negative means never on its own: only SIGHUP reloads the pair.
func WithCertReload(d time.Duration) ServeOption {
	return func(c *serveConfig) { c.reloadInterval = d }
}

// WithCredentials tells [Serve] and [ListenAndServe] that clients send
// credentials to h (a bearer token, a session cookie), so that serving
// them without TLS on an address other hosts can reach logs a warning at
// start-up: the tokens travel in clear unless a TLS-terminating proxy is
// in front. The server still serves; that deployment is common, and
// [WithRealIP] is how it learns the clients' addresses from the proxy.
// Serve cannot see TLS done by a listener of yours (tls.NewListener):
// leave the option out there, or serve with [WithTLS] instead.
func WithCredentials() ServeOption {
	return func(c *serveConfig) { c.credentials = true }
}

// tlsConfig returns the TLS settings [WithTLS] documents.
func tlsConfig(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: get,
	}
}

// http1Only is the http.Server protocol set of a TLS server: without it,
// ServeTLS would offer h2 by ALPN.
func http1Only() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return p
}

// certSource holds the certificate pair of a TLS server and reloads it
// when the files change. The files are looked at on a handshake, at most
// once per interval, so an idle server does no work and needs no
// goroutine.
type certSource struct {
	certFile, keyFile string
	interval          time.Duration
	logger            *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate // in use; nil until a pair loads
	err     error            // why the pair last tried did not load
	tried   [2]os.FileInfo   // the files as they were when last tried
	checked time.Time        // when the files were last looked at
}

func newCertSource(c *serveConfig) *certSource {
	s := &certSource{certFile: c.certFile, keyFile: c.keyFile, interval: c.reloadInterval, logger: c.logger}
	s.mu.Lock()
	s.refreshLocked(true)
	s.mu.Unlock()
	return s
}

// getCertificate is the tls.Config hook.
func (s *certSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interval > 0 && time.Since(s.checked) >= s.interval {
		s.refreshLocked(false)
	}
	if s.cert == nil {
		return nil, s.err
	}
	return s.cert, nil
}

// reload reads the pair again, changed or not: what SIGHUP asks for.
func (s *certSource) reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked(true)
}

// loaded returns the error of the last load when no pair is in use.
func (s *certSource) loaded() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil {
		return s.err
	}
	return nil
}

// refreshLocked loads the pair when the files differ from the ones last
// tried, or when force is set. The files are looked at before they are
// read: a pair replaced while being read is seen as changed next time.
func (s *certSource) refreshLocked(force bool) {
	s.checked = time.Now()
	var now [2]os.FileInfo
	now[0], _ = os.Stat(s.certFile)
	now[1], _ = os.Stat(s.keyFile)
	if !force && sameFile(now[0], s.tried[0]) && sameFile(now[1], s.tried[1]) {
		return
	}
	s.tried = now
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	attrs := []slog.Attr{slog.String("cert_file", s.certFile), slog.String("key_file", s.keyFile)}
	if err != nil {
		s.err = fmt.Errorf("wsguard: loading the TLS certificate %s and key %s: %w", s.certFile, s.keyFile, err)
		msg := "TLS certificate did not load: serving with the previous one"
		if s.cert == nil {
			msg = "TLS certificate did not load: TLS handshakes fail until it does"
		}
		s.logger.LogAttrs(context.Background(), slog.LevelError, msg, append(attrs, errlog.ErrAttr(err))...)
		return
	}
	s.cert, s.err = &cert, nil
	s.logger.LogAttrs(context.Background(), slog.LevelInfo, "TLS certificate loaded",
		append(attrs, slog.Time("not_after", cert.Leaf.NotAfter))...)
}

// sameFile reports whether a and b describe the same unchanged file; two
// missing files are the same.
func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// warnCleartext logs the warning of [WithCredentials] when ln is a TCP
// listener that hosts other than this one can reach.
func (c *serveConfig) warnCleartext(ln net.Listener) {
	if !c.credentials || c.certFile != "" {
		return
	}
	a, ok := ln.Addr().(*net.TCPAddr)
	if !ok || a.IP.IsLoopback() {
		return
	}
	c.logger.LogAttrs(context.Background(), slog.LevelWarn,
		"serving ws:// without TLS on a non-loopback address: tokens travel in clear unless a TLS-terminating proxy is in front (trust it with WithRealIP / trusted proxies), or serve wss:// with WithTLS",
		slog.String("addr", a.String()))
}

// reloadOnHangup reloads the certificate pair on every SIGHUP until the
// returned function is called, which waits for the reload in progress.
func (c *serveConfig) reloadOnHangup() (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-hup:
				c.certs.reload()
			case <-done:
				return
			}
		}
	})
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}
