package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/ops/natsauth"
)

const natsauthUsage = "Usage: sluice natsauth init --nats-dir DIR --users-dir DIR [--hosts H,...] [--rotate USER,...] [--renew-cert] [--chown UID:GID]"

// runNATSAuth serves `sluice natsauth init`: the NATS users' passwords,
// their hashes and the servers' TLS certificate of the compose stack
// (see package natsauth).
func runNATSAuth(args []string) int {
	if len(args) == 0 || args[0] != "init" {
		return verbUsage(args, natsauthUsage)
	}
	fs := flag.NewFlagSet("natsauth init", flag.ContinueOnError)
	var o natsauth.Options
	fs.StringVar(&o.NATSDir, "nats-dir", "", "folder of the NATS servers' files, as the servers see it (the compose stack's /etc/nats/secrets): certificate, key, CA and secrets.conf (required)")
	fs.StringVar(&o.UsersDir, "users-dir", "", "folder that gets one folder per user with its password and the CA (required)")
	hosts := fs.String("hosts", strings.Join(natsauth.DefaultHosts, ","), "names and addresses the servers' certificate is valid for, comma separated")
	rotate := fs.String("rotate", "", "users whose password is replaced, comma separated (then reload the servers and restart those users' clients)")
	fs.BoolVar(&o.RenewCert, "renew-cert", false, "make a new CA and certificate even if the present ones are valid (then restart the servers and every client)")
	owner := fs.String("chown", "", "UID:GID to own every file written (the one-shot service runs as root, NATS and sluice as 65532:65532)")
	if ok, code := parse(fs, "natsauth init", "Makes what the compose stack's NATS needs and does not have yet: a random password per user of ops/nats/auth.conf (kept if present), their bcrypt hashes and the tls block in secrets.conf, and a server certificate signed by a CA made for it (kept while valid; the CA's key is not kept). Prints what it made.", args[1:]); !ok {
		return code
	}
	o.Hosts = splitList(*hosts)
	o.Rotate = splitList(*rotate)
	if *owner != "" {
		u, g, ok := strings.Cut(*owner, ":")
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if !ok || err1 != nil || err2 != nil {
			fmt.Fprintf(os.Stderr, "sluice natsauth init: --chown %q: want UID:GID, numeric\n", *owner)
			return 2
		}
		o.Chown, o.UID, o.GID = true, uid, gid
	}
	res, err := natsauth.Init(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice natsauth init: %v\n", err)
		return 1
	}
	if len(res.NewPasswords) > 0 {
		fmt.Println("new passwords:", strings.Join(res.NewPasswords, " "))
	}
	if res.NewCert {
		fmt.Println("new certificate for", strings.Join(o.Hosts, " "))
	}
	fmt.Println("wrote", o.NATSDir+"/"+natsauth.SecretsFile)
	return 0
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
