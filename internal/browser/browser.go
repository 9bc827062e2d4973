// Package browser starts a headless Chromium for end-to-end tests, through
// github.com/chromedp/chromedp.
//
// A machine without a browser skips those tests with a message saying how
// to run them; with WSGUARD_E2E_REQUIRED=1 (set by CI, which installs
// Chromium) it fails them instead, so that a broken install cannot pass
// as a skip.
package browser

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Environment variables read by [New].
const (
	// EnvRequired set to "1" makes a missing browser fail the test.
	EnvRequired = "WSGUARD_E2E_REQUIRED"
	// EnvPath names the browser binary, overriding the search of PATH.
	EnvPath = "WSGUARD_CHROMIUM"
)

// candidates are the names Chromium goes by, Debian's first.
var candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Find returns the path of the browser binary, or "" when there is none.
func Find() string {
	if p := os.Getenv(EnvPath); p != "" {
		return p
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a headless browser for t and returns the context of its
// first tab, bounded by timeout; [NewTab] opens more. The browser is
// stopped, and its profile deleted, when the test ends. Page console
// output and uncaught exceptions go to the test log. extra are more
// flags, such as [TrustSPKI].
func New(t testing.TB, timeout time.Duration, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := Find()
	if path == "" {
		msg := "no Chromium found (looked for " + fmt.Sprint(candidates) + " in PATH and $" + EnvPath +
			"): install it (apt-get install chromium) to run this browser test"
		if os.Getenv(EnvRequired) == "1" {
			t.Fatal(msg + "; " + EnvRequired + "=1 makes this a failure")
		}
		t.Skip(msg + "; set " + EnvRequired + "=1 to fail instead of skipping")
	}

	var output lockedBuffer
	// The flags keep a sandboxed, offline machine quiet: without the
	// background-networking ones Chromium keeps dialling Google services.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1000, 800),
		chromedp.CombinedOutput(&output),
	}
	opts = append(opts, extra...)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(actx, chromedp.WithListener(consoleLogger(t)))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
		if t.Failed() {
			t.Logf("browser output:\n%s", output.String())
		}
	})
	// Start the browser now, so that a broken install fails here.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting %s: %v\n%s", path, err, output.String())
	}
	return tab
}

// TrustSPKI makes the browser accept a certificate chain, whatever CA
// signed it, when a certificate in it has one of these public keys,
// given as the base64 SHA-256 of the SubjectPublicKeyInfo (see
// localca.Leaf.SPKIHash): how a test trusts the certificate it made, and
// only that one, without installing its CA. Every other certificate is
// still verified.
func TrustSPKI(hashes ...string) chromedp.ExecAllocatorOption {
	return chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(hashes, ","))
}

// NewTab opens another tab in the browser of ctx, closed when the test
// ends.
func NewTab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx, chromedp.WithListener(consoleLogger(t)))
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return tab
}

// consoleLogger returns a listener that copies a tab's console output and
// uncaught exceptions to the test log, until the test ends.
func consoleLogger(t testing.TB) func(ev any) {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() {
		mu.Lock()
		done = true
		mu.Unlock()
	})
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf(format, args...)
		}
	}
	return func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var b bytes.Buffer
			for _, a := range ev.Args {
				b.WriteByte(' ')
				if a.Value != nil {
					b.Write(a.Value)
				} else {
					b.WriteString(a.Description)
				}
			}
			logf("console.%s:%s", ev.Type, b.String())
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			logf("page exception at %s:%d: %s %s", d.URL, d.LineNumber+1, d.Text, desc)
		}
	}
}

// lockedBuffer collects the browser's output, written from chromedp's
// goroutine and read from the test's.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
