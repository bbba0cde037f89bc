package natsauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Users are the NATS users of ops/nats/auth.conf, one per role, and within
// a role one per gateway (each with an inbox of its own) and per worker
// group (each with its own type and queue).
var Users = []string{"gateway-a", "gateway-b", "worker-quotes", "worker-trades", "subscriber", "operator"}

// DefaultHosts are the names and addresses the server certificate is valid
// for: the compose stack's three nodes as the containers reach them, and the
// loopback on which the host reaches their published ports.
var DefaultHosts = []string{"nats-1", "nats-2", "nats-3", "localhost", "127.0.0.1", "::1"}

// DefaultCertLifetime is how long a server certificate (and its CA) is valid.
const DefaultCertLifetime = 825 * 24 * time.Hour

// The files Init writes. In the servers' folder: the certificate, its key,
// the CA and the configuration include; in each user's folder: the password
// and the CA.
const (
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server-key.pem"
	CAFile         = "ca.pem"
	SecretsFile    = "secrets.conf"
	PasswordFile   = "password"
)

// Options say where Init writes and what it renews. The zero value of a
// field means its default.
type Options struct {
	// NATSDir receives the servers' files: the certificate and key, the CA,
	// and secrets.conf (the password hashes and the tls block, with paths
	// under NATSDir: give it as the servers see it). Required.
	NATSDir string
	// UsersDir receives one folder per user (UsersDir/<user>) holding its
	// password and the CA. Required.
	UsersDir string
	// Users to make; default [Users].
	Users []string
	// Hosts the certificate is valid for; default [DefaultHosts].
	Hosts []string
	// Rotate names the users whose existing password is replaced.
	Rotate []string
	// RenewCert makes a new CA and server certificate even if valid ones
	// exist (every client then needs the new CA).
	RenewCert bool
	// Chown gives every file and folder written to UID:GID (Init runs as
	// root in the one-shot service; the servers and clients run as 65532).
	Chown    bool
	UID, GID int
	// Cost is the bcrypt cost of the password hashes; default
	// bcrypt.DefaultCost (10). Each connection costs the server one check
	// at this cost: tests under the race detector take bcrypt.MinCost.
	Cost int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Result says what Init did: the users whose password it made or replaced,
// and whether it made a new certificate.
type Result struct {
	NewPasswords []string
	NewCert      bool
}

// Init makes what is missing: a password per user (kept if present, unless
// rotated), the server certificate (kept while it is valid for more than a
// tenth of its lifetime and covers the hosts), then writes secrets.conf
// from the passwords present. The CA's private key is not kept: once it has
// signed the server certificate nothing can sign another, and a renewal
// makes a new CA. Files holding a secret are written with mode 0400,
// certificates 0444.
func Init(o Options) (Result, error) {
	var res Result
	if o.NATSDir == "" || o.UsersDir == "" {
		return res, fmt.Errorf("%w: the servers' and the users' folders are required", ErrOptions)
	}
	if len(o.Users) == 0 {
		o.Users = Users
	}
	if len(o.Hosts) == 0 {
		o.Hosts = DefaultHosts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Cost == 0 {
		o.Cost = bcrypt.DefaultCost
	}
	for _, u := range append(slices.Clone(o.Users), o.Rotate...) {
		if u == "" || strings.ContainsAny(u, `/\ "`) || !slices.Contains(o.Users, u) {
			return res, fmt.Errorf("%w: user %q: want one of %s", ErrOptions, u, strings.Join(o.Users, ", "))
		}
	}
	w := writer{own: o.Chown, uid: o.UID, gid: o.GID}
	if err := w.mkdir(o.NATSDir); err != nil {
		return res, err
	}
	hashes := make(map[string][]byte, len(o.Users))
	for _, u := range o.Users {
		dir := filepath.Join(o.UsersDir, u)
		if err := w.mkdir(dir); err != nil {
			return res, err
		}
		pw, made, err := w.password(filepath.Join(dir, PasswordFile), slices.Contains(o.Rotate, u))
		if err != nil {
			return res, err
		}
		if made {
			res.NewPasswords = append(res.NewPasswords, u)
		}
		if hashes[u], err = bcrypt.GenerateFromPassword(pw, o.Cost); err != nil {
			return res, fmt.Errorf("hashing the password of %s: %w", u, err)
		}
	}
	ca, made, err := w.certificate(o)
	if err != nil {
		return res, err
	}
	res.NewCert = made
	for _, u := range o.Users {
		if err := w.write(filepath.Join(o.UsersDir, u, CAFile), ca, 0o444); err != nil {
			return res, err
		}
	}
	return res, w.write(filepath.Join(o.NATSDir, SecretsFile), secretsConf(o, hashes), 0o400)
}

// InboxPrefix is the inbox prefix of a user of ops/nats/auth.conf, the
// only inboxes it may subscribe to: "_INBOX.gateway.a" for gateway-a,
// "_INBOX.worker.quotes" for worker-quotes.
func InboxPrefix(user string) string {
	return "_INBOX." + strings.ReplaceAll(user, "-", ".")
}

// PasswordVariable is the configuration variable of a user's password hash
// in secrets.conf, as ops/nats/auth.conf uses it: "gateway-a" gives
// GATEWAY_A_PASSWORD.
func PasswordVariable(user string) string {
	return strings.ToUpper(strings.ReplaceAll(user, "-", "_")) + "_PASSWORD"
}

// secretsConf is the configuration include: the password hashes as
// variables, and the tls block of the client port.
func secretsConf(o Options, hashes map[string][]byte) []byte {
	var b strings.Builder
	b.WriteString("# Written by `sluice natsauth init`: the users' password hashes (bcrypt) that\n")
	b.WriteString("# ops/nats/auth.conf uses, and TLS on the client port. Do not edit: run it again.\n")
	for _, u := range o.Users {
		fmt.Fprintf(&b, "%s: %q\n", PasswordVariable(u), hashes[u])
	}
	fmt.Fprintf(&b, "tls {\n  cert_file: %q\n  key_file: %q\n  timeout: 5\n}\n",
		filepath.Join(o.NATSDir, ServerCertFile), filepath.Join(o.NATSDir, ServerKeyFile))
	return []byte(b.String())
}

// writer writes files, owned by uid:gid with own.
type writer struct {
	own      bool
	uid, gid int
}

func (w writer) mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("making %s: %w", dir, err)
	}
	return w.chown(dir)
}

func (w writer) chown(p string) error {
	if !w.own {
		return nil
	}
	if err := os.Chown(p, w.uid, w.gid); err != nil {
		return fmt.Errorf("owning %s: %w", p, err)
	}
	return nil
}

// write replaces p with data atomically (a reader sees the old file or the
// new one).
func (w writer) write(p string, data []byte, mode os.FileMode) error {
	tmp := p + ".tmp"
	_ = os.Remove(tmp)
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := w.chown(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// password returns the password in p, or makes one (32 random bytes,
// base64url) when p does not exist or rotate is set.
func (w writer) password(p string, rotate bool) ([]byte, bool, error) {
	if !rotate {
		pw, err := os.ReadFile(p)
		if err == nil && len(strings.TrimSpace(string(pw))) > 0 {
			return []byte(strings.TrimSpace(string(pw))), false, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, false, fmt.Errorf("reading %s: %w", p, err)
		}
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	pw := []byte(base64.RawURLEncoding.EncodeToString(raw))
	return pw, true, w.write(p, pw, 0o400)
}

// certificate returns the CA of the servers' certificate, making both when
// the certificate is missing, expires within a tenth of its lifetime, does
// not cover every host, or o.RenewCert.
func (w writer) certificate(o Options) (caPEM []byte, made bool, err error) {
	certPath, caPath := filepath.Join(o.NATSDir, ServerCertFile), filepath.Join(o.NATSDir, CAFile)
	if !o.RenewCert {
		if ca, ok := validCert(certPath, caPath, o); ok {
			return ca, false, nil
		}
	}
	caPEM, certPEM, keyPEM, err := issue(o.Hosts, o.Now(), DefaultCertLifetime)
	if err != nil {
		return nil, false, err
	}
	if err := w.write(filepath.Join(o.NATSDir, ServerKeyFile), keyPEM, 0o400); err != nil {
		return nil, false, err
	}
	if err := w.write(certPath, certPEM, 0o444); err != nil {
		return nil, false, err
	}
	return caPEM, true, w.write(caPath, caPEM, 0o444)
}

// validCert reports whether the certificate in certPath verifies against
// the CA in caPath for every host, for a tenth of its lifetime yet.
func validCert(certPath, caPath string, o Options) ([]byte, bool) {
	certPEM, err1 := os.ReadFile(certPath)
	caPEM, err2 := os.ReadFile(caPath)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, false
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, false
	}
	margin := cert.NotAfter.Sub(cert.NotBefore) / 10
	for _, h := range o.Hosts {
		_, err := cert.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, CurrentTime: o.Now().Add(margin),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			return nil, false
		}
	}
	return caPEM, true
}

// issue makes a CA and a server certificate for hosts signed by it (ECDSA
// P-256), and returns the CA certificate, the server certificate and its
// key, PEM encoded. The CA's key is dropped.
func issue(hosts []string, now time.Time, lifetime time.Duration) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("making the CA key: %w", err)
	}
	notBefore, notAfter := now.Add(-time.Hour), now.Add(lifetime)
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "sluice NATS CA " + now.UTC().Format(time.DateOnly)},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("making the CA: %w", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("making the server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("making the server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encoding the server key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
