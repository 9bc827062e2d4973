package browser

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsguard/kit/internal/localca"
)

// TestTrustSPKI: with TrustSPKI the browser loads a page whose
// certificate has that public key, and still refuses a certificate with
// another key from the same CA: the trust is in one key, not a blanket
// ignore of certificate errors.
func TestTrustSPKI(t *testing.T) {
	t.Parallel()
	ca, err := localca.New("browser test CA")
	if err != nil {
		t.Fatal(err)
	}
	serve := func(name string) (*localca.Leaf, string) {
		leaf, err := ca.Leaf("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		pair, err := leaf.TLS()
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "<!doctype html><title>%s</title>", name)
		}))
		ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		// The refused handshake is the test's point, not news.
		ts.Config.ErrorLog = log.New(io.Discard, "", 0)
		ts.StartTLS()
		t.Cleanup(ts.Close)
		return leaf, ts.URL
	}
	trusted, trustedURL := serve("trusted")
	_, otherURL := serve("other")

	tab := New(t, time.Minute, TrustSPKI(trusted.SPKIHash()))
	for _, tc := range []struct {
		url, want string
	}{
		{trustedURL, "trusted"},
		{otherURL, ""},
	} {
		err := chromedp.Do(tab, chromedp.Navigate(tc.url))
		title, terr := chromedp.Run(tab, chromedp.Title())
		switch {
		case tc.want != "" && (err != nil || terr != nil || title != tc.want):
			t.Errorf("%s: title %q, %v, %v; want %q", tc.url, title, err, terr, tc.want)
		case tc.want == "" && err == nil && title == "other":
			t.Errorf("%s: a certificate with another key loaded", tc.url)
		}
	}
}
