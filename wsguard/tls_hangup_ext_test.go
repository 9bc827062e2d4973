//go:build unix

package wsguard_test

import (
	"log/slog"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/wsguard/kit/errlog"
	"github.com/wsguard/kit/internal/wstest"
	"github.com/wsguard/kit/wsguard"
)

// TestCertReloadOnHangup: SIGHUP reloads the pair at once, with no reload
// interval at all. Not parallel: the signal goes to the whole test
// process, and only a running TLS server may be there to take it.
func TestCertReloadOnHangup(t *testing.T) {
	pki := newPKI(t)
	logs := &wstest.Logs{}
	addr, stop := serveTest(t, http.NotFoundHandler(),
		wsguard.WithTLS(pki.certFile, pki.keyFile), wsguard.WithCertReload(0),
		wsguard.WithServeLogger(errlog.NewLogger(logs, slog.LevelDebug)))
	first := servedSerial(t, addr, pki.clientTLS())
	renewed := pki.renew(t).Cert.SerialNumber.String()
	if got := servedSerial(t, addr, pki.clientTLS()); got != first {
		t.Fatalf("serving %s before SIGHUP, want %s", got, first)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for servedSerial(t, addr, pki.clientTLS()) != renewed {
		if time.Now().After(deadline) {
			t.Fatalf("still serving %s 5 s after SIGHUP", first)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
