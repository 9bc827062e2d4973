package localca_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsguard/kit/internal/localca"
)

// TestLeaf: a leaf verifies against its CA for each of its hosts and no
// other, its files load as a key pair, and its SPKI hash is the one
// Chromium computes (SHA-256 of the SubjectPublicKeyInfo, base64).
func TestLeaf(t *testing.T) {
	t.Parallel()
	ca, err := localca.New("test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf("localhost", "127.0.0.1", "::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		ok   bool
	}{{"localhost", true}, {"127.0.0.1", true}, {"::1", true}, {"example.com", false}, {"127.0.0.2", false}} {
		_, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: tc.host, Roots: ca.Pool()})
		if (err == nil) != tc.ok {
			t.Errorf("Verify(%s) = %v, want ok %v", tc.host, err, tc.ok)
		}
	}
	other, err := localca.New("other")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: other.Pool()}); err == nil {
		t.Error("the leaf verifies against another CA")
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := leaf.WriteFiles(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(pair.Certificate) != 2 || !pair.Leaf.Equal(leaf.Cert) {
		t.Errorf("the files hold %d certificates, leaf %v", len(pair.Certificate), pair.Leaf.Subject)
	}
	sum := sha256.Sum256(pair.Leaf.RawSubjectPublicKeyInfo)
	if got := leaf.SPKIHash(); got != base64.StdEncoding.EncodeToString(sum[:]) || len(got) != 44 {
		t.Errorf("SPKI hash %q", got)
	}
	if _, err := ca.Leaf(); err == nil {
		t.Error("a leaf with no host was made")
	}
}

// TestWriteDir: the three files are written, the key readable by its
// owner only, and CABeside finds the CA next to the certificate.
func TestWriteDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := localca.WriteDir(dir, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("ca.pem holds no certificate")
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(f.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	if got := localca.CABeside(f.CertFile); got != f.CAFile {
		t.Errorf("CABeside = %q, want %q", got, f.CAFile)
	}
	if got := localca.CABeside(filepath.Join(t.TempDir(), "cert.pem")); got != "" {
		t.Errorf("CABeside found %q in an empty directory", got)
	}
	if _, err := localca.WriteDir(filepath.Join(dir, "missing"), "localhost"); err == nil {
		t.Error("WriteDir into a missing directory succeeded")
	}
}
