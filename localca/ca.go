package localca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultLeafTTL is how long a minted leaf certificate is valid.
const DefaultLeafTTL = 24 * time.Hour

// caValidity is the lifetime of a CA made by Create.
const caValidity = 10 * 365 * 24 * time.Hour

// CA is the local certificate authority that mints the leaf certificates
// the transparent proxy presents for intercepted hosts. Leaves live in memory only and
// are re-minted when less than a quarter of their lifetime is left.
type CA struct {
	cert    *x509.Certificate
	certDER []byte
	key     crypto.Signer
	ttl     time.Duration
	now     func() time.Time

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// Create makes a CA key (ECDSA P-256) and self-signed certificate named
// commonName, valid for ten years, and returns both in PEM.
func Create(commonName string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"ecr-ptc"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// Load reads a CA from its PEM certificate and PKCS#8, EC or RSA private
// key. leafTTL is the lifetime of minted leaves; 0 means DefaultLeafTTL.
func Load(certPEM, keyPEM []byte, leafTTL time.Duration) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w: want the PEM certificate and key `ecr-ptc setup --transparent` wrote", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("load CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("load CA: the certificate is not a CA (basicConstraints CA:TRUE missing)")
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("load CA: the key cannot sign")
	}
	if leafTTL <= 0 {
		leafTTL = DefaultLeafTTL
	}
	return &CA{cert: cert, certDER: pair.Certificate[0], key: signer, ttl: leafTTL, now: time.Now, leaves: map[string]*tls.Certificate{}}, nil
}

// CertPEM returns the CA certificate in PEM, as dockerd's ca.crt holds it.
func (c *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.certDER})
}

// Leaf returns a certificate for host, minting one (ECDSA P-256, valid for
// the leaf lifetime) when there is none or the cached one is close to
// expiry.
func (c *CA) Leaf(host string) (*tls.Certificate, error) {
	host = strings.ToLower(host)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.leaves[host]; ok && l.Leaf.NotAfter.Sub(now) > c.ttl/4 {
		return l, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate leaf key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(c.ttl),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("sign leaf for %q: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse leaf for %q: %w", host, err)
	}
	l := &tls.Certificate{Certificate: [][]byte{der, c.certDER}, PrivateKey: key, Leaf: leaf}
	c.leaves[host] = l
	return l, nil
}

// Minted returns the hosts a leaf was minted for, sorted.
func (c *CA) Minted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.leaves))
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("random serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
