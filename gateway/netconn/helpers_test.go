package netconn

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/selfsigned"
	"github.com/sluice-dev/sluice/ops/opstest"
)

// waitIdle waits until the flusher has written everything pending (or
// failed) and returns the write error, if any.
func (w *coalescer) waitIdle() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.busy {
		w.cond.Wait()
	}
	return w.err
}

// checkFor polls f until it returns nil, for up to 10 s.
func checkFor(t testing.TB, f func() error) {
	t.Helper()
	opstest.CheckFor(t, 10*time.Second, 2*time.Millisecond, f)
}

// newClientTLS returns a fresh client TLS config trusting roots: one per
// transport, since HTTP/2 setup mutates NextProtos.
func newClientTLS(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// into a temporary directory and returns the PEM files' paths and a pool
// trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	certFile, keyFile, roots, err := selfsigned.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, roots
}
