package composetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// nodes names the NATS services of the stack, index i being nats-(i+1).
var nodes = [3]string{"nats-1", "nats-2", "nats-3"}

// natsURLs returns the client URLs of the given nodes (indexes into
// nodes) on their 127.0.0.1 ports, comma separated as --nats takes them.
func (s *stack) natsURLs(idx ...int) string {
	urls := make([]string, len(idx))
	for i, n := range idx {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", s.ports.nats[n])
	}
	return strings.Join(urls, ",")
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
