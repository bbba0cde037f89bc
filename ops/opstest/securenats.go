package opstest

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/sluice-dev/sluice/ops/natsauth"
)

// SecureNATS is a NATS server run from the compose stack's NATS
// configuration (ops/nats/node.conf and auth.conf): TLS on the
// client port, one user per role with the stack's permissions.
type SecureNATS struct {
	Server *server.Server
	// URL is the client URL, tls://127.0.0.1:PORT.
	URL string
	// UsersDir holds a folder per user with its password and the CA, as
	// `sluice natsauth init` makes them.
	UsersDir string
	// NATSDir holds the server's secrets (secrets.conf, certificate).
	NATSDir string

	conf  string // the main configuration file
	store string
}

// RunSecureNATS copies the stack's NATS configuration into a temporary
// folder, makes its secrets there with natsauth.Init, and runs a server
// from it: the stack's own files, with only the listen address, the
// monitoring port (off) and the JetStream store changed for the test, and
// password hashes of the least bcrypt cost (a connection's check at the
// default cost takes seconds under the race detector, past the server's
// first PING). The server is shut down by t.Cleanup.
func RunSecureNATS(t testing.TB) *SecureNATS {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "nats")
	root := t.TempDir()
	conf := filepath.Join(root, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"node.conf", "auth.conf"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(conf, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	users := filepath.Join(root, "users")
	if _, err := natsauth.Init(natsauth.Options{NATSDir: filepath.Join(conf, "secrets"), UsersDir: users,
		Cost: bcrypt.MinCost}); err != nil {
		t.Fatalf("natsauth init: %v", err)
	}
	main := filepath.Join(conf, "test.conf")
	text := "server_name: sluice-test\ninclude ./node.conf\ninclude ./auth.conf\n"
	if err := os.WriteFile(main, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sn := &SecureNATS{UsersDir: users, NATSDir: filepath.Join(conf, "secrets"), conf: main, store: t.TempDir()}
	opts := sn.options(t, server.RANDOM_PORT)
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server: not ready within 10s")
	}
	sn.Server, sn.URL = s, strings.Replace(s.ClientURL(), "nats://", "tls://", 1)
	return sn
}

// options loads the configuration with the test's changes.
func (s *SecureNATS) options(t testing.TB, port int) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(s.conf)
	if err != nil {
		t.Fatalf("loading the stack's NATS configuration: %v", err)
	}
	opts.Host, opts.Port = "127.0.0.1", port
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.StoreDir = s.store
	opts.NoSigs = true
	return opts
}

// Reload makes the server read its configuration again, as SIGHUP does:
// after natsauth.Init rotated a password, the new hash.
func (s *SecureNATS) Reload(t testing.TB) {
	t.Helper()
	if err := s.Server.ReloadOptions(s.options(t, s.Server.Addr().(*net.TCPAddr).Port)); err != nil {
		t.Fatalf("reloading the NATS configuration: %v", err)
	}
}

// File is the path of a user's file (natsauth.PasswordFile, CAFile).
func (s *SecureNATS) File(user, name string) string { return filepath.Join(s.UsersDir, user, name) }

// Options are the client options of user: its password, the CA, its inbox
// prefix, and a connect timeout that a busy machine meets (the server
// checks a bcrypt hash).
func (s *SecureNATS) Options(t testing.TB, user string) []nats.Option {
	t.Helper()
	pw, err := os.ReadFile(s.File(user, natsauth.PasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	return []nats.Option{nats.UserInfo(user, string(pw)), nats.RootCAs(s.File(user, natsauth.CAFile)),
		nats.CustomInboxPrefix(natsauth.InboxPrefix(user)), nats.Timeout(10 * time.Second)}
}
