package natsauth_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sluice-dev/sluice/ops/natsauth"
)

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInit: a first run makes every password and the certificate; a second
// keeps them; a rotation replaces one password alone; secrets.conf always
// holds the hashes of the passwords present; the certificate verifies for
// every host against the CA given to the users.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	o := natsauth.Options{NATSDir: filepath.Join(dir, "nats"), UsersDir: filepath.Join(dir, "users")}
	res, err := natsauth.Init(o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.NewPasswords, natsauth.Users) || !res.NewCert {
		t.Fatalf("first run: %+v, want every password and a certificate", res)
	}
	pw := map[string]string{}
	for _, u := range natsauth.Users {
		pw[u] = read(t, filepath.Join(o.UsersDir, u, natsauth.PasswordFile))
		if fi, _ := os.Stat(filepath.Join(o.UsersDir, u, natsauth.PasswordFile)); fi.Mode().Perm() != 0o400 {
			t.Errorf("%s's password has mode %v, want 0400", u, fi.Mode().Perm())
		}
	}
	cert := read(t, filepath.Join(o.NATSDir, natsauth.ServerCertFile))
	o.Rotate = []string{"worker-quotes"}
	if res, err = natsauth.Init(o); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.NewPasswords, []string{"worker-quotes"}) || res.NewCert {
		t.Fatalf("rotating worker-quotes: %+v", res)
	}
	if read(t, filepath.Join(o.NATSDir, natsauth.ServerCertFile)) != cert {
		t.Error("a second run replaced a valid certificate")
	}
	conf := read(t, filepath.Join(o.NATSDir, natsauth.SecretsFile))
	for _, u := range natsauth.Users {
		now := read(t, filepath.Join(o.UsersDir, u, natsauth.PasswordFile))
		if (now != pw[u]) != (u == "worker-quotes") {
			t.Errorf("%s's password changed: %v", u, now != pw[u])
		}
		hash := between(conf, natsauth.PasswordVariable(u)+`: "`, `"`)
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte(now)) != nil {
			t.Errorf("secrets.conf's hash of %s does not match its password", u)
		}
		if strings.Contains(conf, now) {
			t.Errorf("secrets.conf holds %s's password", u)
		}
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(read(t, filepath.Join(o.UsersDir, "subscriber", natsauth.CAFile))))
	block, _ := pem.Decode([]byte(cert))
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range natsauth.DefaultHosts {
		if _, err := c.Verify(x509.VerifyOptions{DNSName: h, Roots: roots}); err != nil {
			t.Errorf("the certificate for %s: %v", h, err)
		}
	}
	if _, err := c.Verify(x509.VerifyOptions{DNSName: "evil.test", Roots: roots}); err == nil {
		t.Error("the certificate verifies for a host it does not list")
	}
	o.Rotate, o.Hosts = nil, []string{"nats-1", "nats-4"}
	if res, _ = natsauth.Init(o); !res.NewCert {
		t.Error("a certificate that does not cover a new host was kept")
	}
	o.Now = func() time.Time { return time.Now().Add(natsauth.DefaultCertLifetime - time.Hour) }
	if res, _ = natsauth.Init(o); !res.NewCert {
		t.Error("a certificate about to expire was kept")
	}
	if _, err := natsauth.Init(natsauth.Options{NATSDir: o.NATSDir, UsersDir: o.UsersDir, Rotate: []string{"root"}}); !errors.Is(err, natsauth.ErrOptions) {
		t.Errorf("rotating an unknown user: %v, want ErrOptions", err)
	}
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}
