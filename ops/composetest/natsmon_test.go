package composetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/ops/natsauth"
)

// nodes names the NATS services of the stack, index i being nats-(i+1).
var nodes = [3]string{"nats-1", "nats-2", "nats-3"}

// natsURLs returns the client URLs of the given nodes (indexes into
// nodes) on their 127.0.0.1 ports, comma separated as --nats takes them.
// The stack's client port speaks TLS only.
func (s *stack) natsURLs(idx ...int) string {
	urls := make([]string, len(idx))
	for i, n := range idx {
		urls[i] = fmt.Sprintf("tls://127.0.0.1:%d", s.ports.nats[n])
	}
	return strings.Join(urls, ",")
}

// userDir returns the folder holding user's NATS password and the CA
// (natsauth.PasswordFile, natsauth.CAFile), copied out of the natsauth
// container once, as a user of the stack would (docker cp). The volumes
// outlive a stop and start of the stack, so the copy stays good until
// down -v.
func (s *stack) userDir(t *testing.T, user string) string {
	t.Helper()
	s.credsMu.Lock()
	defer s.credsMu.Unlock()
	dir := filepath.Join(s.creds, user)
	if fileExists(filepath.Join(dir, natsauth.PasswordFile)) {
		return dir
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	auth, err := s.containers(ctx, "natsauth")
	if err != nil || len(auth) != 1 {
		t.Fatalf("the natsauth container: %v %v", auth, err)
	}
	if _, err := s.docker(ctx, "cp", auth[0].ID+":/secrets/"+user, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// natsOptions are the options that connect as user (operator for the
// test's own connections, subscriber for `sluice sub`): its password, its
// inbox prefix and the stack's CA, verifying the nodes' certificate.
func (s *stack) natsOptions(t *testing.T, user string) []nats.Option {
	t.Helper()
	dir := s.userDir(t, user)
	pw, err := os.ReadFile(filepath.Join(dir, natsauth.PasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	return []nats.Option{nats.UserInfo(user, strings.TrimRight(string(pw), "\n")),
		nats.CustomInboxPrefix(natsauth.InboxPrefix(user)), nats.RootCAs(filepath.Join(dir, natsauth.CAFile))}
}

// sluiceNATSFlags are the flags of a sluice command on the host that
// connect to nodes idx as user, like natsOptions.
func (s *stack) sluiceNATSFlags(t *testing.T, user string, idx ...int) []string {
	t.Helper()
	dir := s.userDir(t, user)
	return []string{"--nats", s.natsURLs(idx...), "--nats-user", user,
		"--nats-password-file", filepath.Join(dir, natsauth.PasswordFile),
		"--nats-ca", filepath.Join(dir, natsauth.CAFile), "--nats-inbox-prefix", natsauth.InboxPrefix(user)}
}

// gateways returns the base URLs of gateway-a and gateway-b.
func (s *stack) gateways() []string {
	return []string{
		fmt.Sprintf("http://127.0.0.1:%d", s.ports.gatewayA),
		fmt.Sprintf("http://127.0.0.1:%d", s.ports.gatewayB),
	}
}

// monitor GETs path from the monitoring port of node i into v.
func (s *stack) monitor(i int, path string, v any) error {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", s.ports.natsMonitor[i], path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", nodes[i], path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// clientNames returns how many client connections of each name node i has
// (sluice-gateway, sluice-worker-quotes, ...), from /connz.
func (s *stack) clientNames(i int) (map[string]int, error) {
	var connz struct {
		Connections []struct {
			Name string `json:"name"`
		} `json:"connections"`
	}
	if err := s.monitor(i, "/connz?limit=4096", &connz); err != nil {
		return nil, err
	}
	names := map[string]int{}
	for _, c := range connz.Connections {
		names[c.Name]++
	}
	return names, nil
}

// routeNames returns the server names node i has routes to, from /routez.
func (s *stack) routeNames(i int) (map[string]bool, error) {
	var routez struct {
		Routes []struct {
			RemoteName string `json:"remote_name"`
		} `json:"routes"`
	}
	if err := s.monitor(i, "/routez", &routez); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, r := range routez.Routes {
		names[r.RemoteName] = true
	}
	return names, nil
}

// interestEverywhere reports nil when every node knows of a subscription
// to subject: its own client's (found by /subsz for the literal subject
// test) or a remote one, announced on a route (/routez?subs=1).
func (s *stack) interestEverywhere(subject, test string) error {
	for i := range nodes {
		var subsz struct {
			Subs []struct{} `json:"subscriptions_list"`
		}
		if err := s.monitor(i, "/subsz?subs=1&test="+url.QueryEscape(test), &subsz); err != nil {
			return err
		}
		if len(subsz.Subs) > 0 {
			continue
		}
		var routez struct {
			Routes []struct {
				Subs []string `json:"subscriptions_list"`
			} `json:"routes"`
		}
		if err := s.monitor(i, "/routez?subs=1", &routez); err != nil {
			return err
		}
		found := false
		for _, r := range routez.Routes {
			found = found || slices.Contains(r.Subs, subject)
		}
		if !found {
			return fmt.Errorf("%s does not know of a subscription to %s yet", nodes[i], subject)
		}
	}
	return nil
}
