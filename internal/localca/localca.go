// Package localca makes a private certificate authority and leaf
// certificates signed by it, with crypto/x509 only: for running the
// examples over wss:// on a development machine (go run ./examples/certs)
// and for the TLS tests, which make a new one each run.
//
// Keys are ECDSA P-256, which every browser and TLS stack accepts. The
// CA's key never needs to leave the process that made it: a leaf is all a
// server needs, the CA certificate all a client needs.
package localca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// LeafLifetime is how long a leaf is valid: under the 398 days browsers
// accept from any CA.
const LeafLifetime = 90 * 24 * time.Hour

// caLifetime is how long the CA is valid.
const caLifetime = 365 * 24 * time.Hour

// CA is a certificate authority whose key is in memory.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// Leaf is a certificate signed by a [CA], with its key.
type Leaf struct {
	Cert    *x509.Certificate
	CertPEM []byte // the leaf, then the CA: the chain a server sends
	KeyPEM  []byte
}

// New makes a CA named name.
func New(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"wsguard local CA"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), key: key}, nil
}

// Leaf makes a server certificate for hosts, names or IP addresses,
// valid from an hour ago for [LeafLifetime].
func (ca *CA) Leaf(hosts ...string) (*Leaf, error) {
	if len(hosts) == 0 {
		return nil, errors.New("localca: a leaf needs at least one host")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(LeafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	chain := append(pemBlock("CERTIFICATE", der), ca.CertPEM...)
	return &Leaf{Cert: cert, CertPEM: chain, KeyPEM: pemBlock("PRIVATE KEY", kder)}, nil
}

// Pool returns a certificate pool that trusts only ca.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// TLS returns the leaf as a tls.Certificate.
func (l *Leaf) TLS() (tls.Certificate, error) {
	return tls.X509KeyPair(l.CertPEM, l.KeyPEM)
}

// SPKIHash is the base64 SHA-256 of the leaf's public key, the form
// Chromium's --ignore-certificate-errors-spki-list takes.
func (l *Leaf) SPKIHash() string {
	sum := sha256.Sum256(l.Cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// WriteFiles writes the leaf's chain and key as PEM files; the key file
// is readable by its owner only.
func (l *Leaf) WriteFiles(certFile, keyFile string) error {
	if err := os.WriteFile(certFile, l.CertPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, l.KeyPEM, 0o600)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on a supported platform
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// Names of the files [WriteDir] writes.
const (
	CAFile   = "ca.pem"   // the CA certificate, for clients to trust
	CertFile = "cert.pem" // the leaf and the CA, for the server
	KeyFile  = "key.pem"  // the leaf's key, for the server
)

// Files are the PEM files [WriteDir] wrote, with what they hold.
type Files struct {
	CAFile, CertFile, KeyFile string
	CA                        *CA
	Leaf                      *Leaf
}

// WriteDir makes a CA and a leaf for hosts and writes [CAFile],
// [CertFile] and [KeyFile] into dir, which must exist. The CA's key is
// not written: nothing else can be signed with it once the process ends.
func WriteDir(dir string, hosts ...string) (*Files, error) {
	ca, err := New("wsguard local CA")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Leaf(hosts...)
	if err != nil {
		return nil, err
	}
	f := &Files{
		CAFile:   filepath.Join(dir, CAFile),
		CertFile: filepath.Join(dir, CertFile),
		KeyFile:  filepath.Join(dir, KeyFile),
		CA:       ca,
		Leaf:     leaf,
	}
	if err := os.WriteFile(f.CAFile, ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	if err := leaf.WriteFiles(f.CertFile, f.KeyFile); err != nil {
		return nil, err
	}
	return f, nil
}

// CABeside returns the [CAFile] in the directory of certFile when there is
// one, as after WriteDir, and "" otherwise: a server prints it in the
// client command it suggests.
func CABeside(certFile string) string {
	name := filepath.Join(filepath.Dir(certFile), CAFile)
	if _, err := os.Stat(name); err != nil {
		return ""
	}
	return name
}
