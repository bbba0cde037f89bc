package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// natsAuth are how a command proves who it is to NATS and checks who NATS
// is: credentials read from files (never given on the command line, where
// ps shows them), the CA that signed the servers' certificate, and the
// inbox prefix its permissions allow. Every command that connects to a
// NATS server takes them (see README, Security).
type natsAuth struct {
	user         string
	passwordFile string
	creds        string
	nkey         string
	ca           string
	inboxPrefix  string
}

func (a *natsAuth) register(fs *flag.FlagSet) {
	fs.StringVar(&a.user, "nats-user", "", "NATS user name (with --nats-password-file)")
	fs.StringVar(&a.passwordFile, "nats-password-file", "", "file holding the NATS user's password (a mounted secret; trailing newlines are ignored)")
	fs.StringVar(&a.creds, "nats-creds", "", "NATS credentials file (a user JWT and its nkey seed, as nsc writes it), for decentralized auth")
	fs.StringVar(&a.nkey, "nats-nkey", "", "file holding a NATS user's nkey seed, for nkey auth")
	fs.StringVar(&a.ca, "nats-ca", "", "CA certificate file (PEM) that signed the NATS servers' certificate: the connection then requires TLS and verifies the server (tls:// URLs without it verify against the system's CAs)")
	fs.StringVar(&a.inboxPrefix, "nats-inbox-prefix", "", "prefix of the connection's reply inboxes instead of _INBOX, so that NATS permissions can give each user inboxes of its own (the stack's users: _INBOX.<role>, _INBOX.gateway.a)")
}

// options returns the NATS client options of the flags, or an error naming
// the flags that do not go together or a file that cannot be read.
func (a *natsAuth) options() ([]nats.Option, error) {
	var opts []nats.Option
	n := 0
	for _, set := range []bool{a.user != "" || a.passwordFile != "", a.creds != "", a.nkey != ""} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, errors.New("--nats-user, --nats-creds and --nats-nkey are each a way to authenticate: give one")
	case (a.user == "") != (a.passwordFile == ""):
		return nil, errors.New("--nats-user and --nats-password-file go together")
	case a.user != "":
		pw, err := os.ReadFile(a.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--nats-password-file: %w", err)
		}
		opts = append(opts, nats.UserInfo(a.user, strings.TrimRight(string(pw), "\r\n")))
	case a.creds != "":
		if _, err := os.Stat(a.creds); err != nil {
			return nil, fmt.Errorf("--nats-creds: %w", err)
		}
		opts = append(opts, nats.UserCredentials(a.creds))
	case a.nkey != "":
		o, err := nats.NkeyOptionFromSeed(a.nkey)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if a.ca != "" {
		// Read here, so that a missing file is a usage error and not a
		// failed connection.
		pem, err := os.ReadFile(a.ca)
		if err != nil {
			return nil, fmt.Errorf("--nats-ca: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--nats-ca %s: no PEM certificate in it", a.ca)
		}
		opts = append(opts, nats.RootCAs(a.ca))
	}
	if a.inboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(a.inboxPrefix))
	}
	return opts, nil
}

// permanentConnectError reports whether a failed first connection cannot
// succeed by retrying (a certificate not trusted, credentials refused) and
// returns it with what to change; a server not up yet is not permanent.
func permanentConnectError(err error) (error, bool) {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown), errors.As(err, &verify) && errors.As(verify.Err, &unknown):
		return fmt.Errorf("the NATS server's certificate is not signed by a trusted CA (give the CA with --nats-ca): %w", err), true
	case errors.As(err, &host):
		return fmt.Errorf("the NATS server's certificate is not valid for the host in the URL (connect by a name it lists): %w", err), true
	case errors.As(err, &verify):
		return fmt.Errorf("the NATS server's certificate did not verify: %w", err), true
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		return fmt.Errorf("NATS refused the credentials (check --nats-user and --nats-password-file, --nats-creds or --nats-nkey): %w", err), true
	case errors.Is(err, nats.ErrSecureConnRequired):
		return fmt.Errorf("the NATS server requires TLS (use a tls:// URL, and --nats-ca for a private CA): %w", err), true
	case errors.Is(err, nats.ErrSecureConnWanted):
		return fmt.Errorf("the NATS server does not offer TLS, which --nats-ca requires: %w", err), true
	}
	return err, false
}
