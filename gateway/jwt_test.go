package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/gateway/admit"
	"github.com/sluice-dev/sluice/gateway/admit/jwttest"
	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/schemas"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// jwtEnv is a gateway with JWT on (keys served by a JWKS over TLS) and a
// keys file, live workers faked by load reports, and a subscription to
// every ingest subject.
type jwtEnv struct {
	*testEnv
	keys   [3]*jwttest.Key // rsa, ec, ed
	jwks   *jwttest.Server
	logs   *syncBuffer
	ingest chan *nats.Msg
}

const jwtTestAPIKey = "k-7Hq2-not-a-jwt"

func newJWTEnv(t *testing.T, mode string, keys [3]*jwttest.Key) *jwtEnv {
	t.Helper()
	e := &jwtEnv{keys: keys, jwks: jwttest.NewServer(t, keys[:]...), logs: &syncBuffer{}, ingest: make(chan *nats.Msg, 64)}
	v, err := admit.NewVerifier(admit.JWTOptions{JWKS: e.jwks.URL + "/jwks.json", Issuer: jwttest.Issuer,
		Audience: jwttest.Audience, HTTPClient: e.jwks.Client(), UnknownKIDRefetch: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	kf := &admit.KeysFile{Keys: []admit.Key{{Client: "keyed", SHA256: admit.HashKey(jwtTestAPIKey), Types: []string{"quote"}}}}
	e.testEnv = newTestEnv(t, mode, nil, func(o *Options) {
		o.Admission = AdmissionOptions{JWT: v, Keys: kf, AuditInterval: time.Hour}
		o.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	})
	for _, k := range schemas.Kinds {
		sub, err := e.nc.ChanSubscribe(e.subj.Ingest(k), e.ingest)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e.liveWorkers()
	return e
}

// liveWorkers reports load for both groups until the test ends, and waits
// until the gateway sees them.
func (e *jwtEnv) liveWorkers() {
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	report := func() {
		for _, g := range []string{"quotes", "trades"} {
			lr := schemas.LoadReport{Worker: "w-" + g, Group: g, IntervalMS: 50, MaxRate: 100000}
			_ = e.nc.Publish(e.subj.Load(g), lr.AppendMsgpack(nil))
		}
	}
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				report()
			}
		}
	}()
	checkFor(e.t, func() error {
		for _, k := range schemas.Kinds {
			if e.srv.adm.groups[k].load.Live() == 0 {
				return errors.New("no live workers yet")
			}
		}
		return nil
	})
}

func (e *jwtEnv) token(i int, sub string, extra jwt.MapClaims) string {
	return e.keys[i].Sign(e.t, jwttest.Claims(sub, extra))
}

// postAs posts one quote or trade with the given Authorization value.
func (e *jwtEnv) postAs(kind, auth string, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	body := quoteJSONBody("AAPL")
	if kind == "trade" {
		body = `{"symbol":"AAPL","price":189.5,"size":100,"venue":"XNAS"}`
	}
	if auth != "" {
		hdr = append(hdr, "Authorization", auth)
	}
	return e.post(kind, "application/json", body, hdr...)
}

// wantNothingPublished sends a good request and checks that its frame is
// the first and only one on the ingest subjects: nothing refused before it
// reached NATS.
func (e *jwtEnv) wantNothingPublished() {
	e.t.Helper()
	resp, body := e.postAs("quote", "Bearer "+e.token(0, "probe", jwt.MapClaims{"scope": "publish:quote"}))
	wantAccepted(e.t, resp, body, 1)
	select {
	case m := <-e.ingest:
		if evs := decodeFrame(e.t, m); len(evs) != 1 {
			e.t.Fatalf("first frame on the ingest subjects holds %d events, want only the probe's", len(evs))
		}
	case <-time.After(10 * time.Second):
		e.t.Fatal("the probe's frame did not arrive")
	}
	if n := len(e.ingest); n != 0 {
		e.t.Fatalf("%d more frames on the ingest subjects", n)
	}
}

var jwtTestKeys struct {
	once sync.Once
	keys [3]*jwttest.Key
}

func testJWTKeys(t *testing.T) [3]*jwttest.Key {
	jwtTestKeys.once.Do(func() {
		jwtTestKeys.keys = [3]*jwttest.Key{jwttest.NewRSA(t, "rsa1"), jwttest.NewEC(t, "ec1"), jwttest.NewEd(t, "ed1")}
	})
	return jwtTestKeys.keys
}

// TestJWTRefused: the negative suite over HTTP/1.1 and h2c, each a 401
// with an RFC 6750 challenge that quotes nothing of the token, counted by
// reason, and nothing reaches NATS.
func TestJWTRefused(t *testing.T) {
	keys := testJWTKeys(t)
	forModes(t, func(t *testing.T, mode string) {
		e := newJWTEnv(t, mode, keys)
		rsaKey := keys[0]
		now := time.Now()
		sign := func(m jwt.SigningMethod, key any) string {
			tok := jwt.NewWithClaims(m, jwttest.Claims("a", jwt.MapClaims{"scope": "publish:*"}))
			tok.Header["kid"] = "rsa1"
			s, err := tok.SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		pub := jwttest.PublicPEM(t, rsaKey)
		removed := jwttest.NewEC(t, "ec-gone")
		all := jwt.MapClaims{"scope": "publish:*"}
		with := func(k string, v any) jwt.MapClaims { return jwt.MapClaims{"scope": "publish:*", k: v} }
		cases := []struct{ name, token, reason, desc string }{
			{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), "invalid_token", "signature"},
			{"HS256 keyed with the RSA public key", sign(jwt.SigningMethodHS256, pub), "invalid_token", "signature"},
			{"expired", e.token(0, "a", with("exp", now.Add(-time.Minute).Unix())), "expired_token", "expired"},
			{"not yet valid", e.token(1, "a", with("nbf", now.Add(time.Minute).Unix())), "invalid_token", "not valid yet"},
			{"wrong issuer", e.token(2, "a", with("iss", "https://evil.test")), "invalid_token", "wrong issuer"},
			{"wrong audience", e.token(0, "a", with("aud", "someone-else")), "invalid_token", "wrong audience"},
			{"unknown kid", removed.Sign(t, jwttest.Claims("a", all)), "invalid_token", "algorithm or key"},
			{"4 KiB of dots", strings.Repeat(".", 4<<10), "invalid_token", "malformed"},
		}
		for _, c := range cases {
			before := e.counter(`sluice_gateway_denials_total{reason="` + c.reason + `"}`)
			resp, body := e.postAs("quote", "Bearer "+c.token)
			wantProblem(t, resp, body, http.StatusUnauthorized, c.desc)
			want := `Bearer realm="sluice", error="invalid_token", error_description="`
			if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, want) || !strings.Contains(h, c.desc) {
				t.Errorf("%s: WWW-Authenticate %q", c.name, h)
			}
			if after := e.counter(`sluice_gateway_denials_total{reason="` + c.reason + `"}`); after != before+1 {
				t.Errorf("%s: denials{reason=%q} went from %d to %d", c.name, c.reason, before, after)
			}
			if sig := c.token[max(0, len(c.token)-16):]; len(c.token) > 16 && strings.Trim(sig, ".") != "" &&
				(bytes.Contains(body, []byte(sig)) || strings.Contains(resp.Header.Get("WWW-Authenticate"), sig)) {
				t.Errorf("%s: the answer quotes the token", c.name)
			}
		}
		// No credentials: a challenge without an error code (RFC 6750 3.1).
		resp, body := e.postAs("quote", "")
		wantProblem(t, resp, body, http.StatusUnauthorized, "API key or token is required")
		if h := resp.Header.Get("WWW-Authenticate"); h != `Bearer realm="sluice"` {
			t.Errorf("no credentials: WWW-Authenticate %q", h)
		}
		// 1 MB of dots: the header block is over the listener's 64 KiB
		// bound; HTTP/1.1 gets 431, and Go's HTTP/2 client refuses to send
		// a header list larger than the server advertised.
		huge := "Bearer " + strings.Repeat(".", 1<<20)
		req, _ := http.NewRequest(http.MethodPost, e.base+"/v1/events/quote", strings.NewReader(quoteJSONBody("AAPL")))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", huge)
		r, err := e.client.Do(req)
		switch {
		case mode == "h1" && (err != nil || r.StatusCode != http.StatusRequestHeaderFieldsTooLarge):
			t.Errorf("1 MB of dots over HTTP/1.1: %v %v, want 431", r, err)
		case mode == "h2c" && (err == nil || !strings.Contains(err.Error(), "header list larger")):
			t.Errorf("1 MB of dots over h2c: %v %v, want the client's refusal", r, err)
		}
		if r != nil {
			r.Body.Close()
		}
		if strings.Contains(e.logs.String(), "eyJ") {
			t.Errorf("a token in the logs:\n%s", e.logs.String())
		}
		e.wantNothingPublished()
	})
}

// TestJWTClients: each claim shape maps to its client over HTTP: types
// allowed (403 outside the scope, nothing published), the priority cap,
// the rate (429 past sluice_rate); API keys keep working beside tokens.
func TestJWTClients(t *testing.T) {
	keys := testJWTKeys(t)
	forModes(t, func(t *testing.T, mode string) {
		e := newJWTEnv(t, mode, keys)
		quoteOnly := "Bearer " + e.token(0, "rsa-quotes", jwt.MapClaims{"scope": "openid publish:quote"})
		resp, body := e.postAs("quote", quoteOnly)
		wantAccepted(t, resp, body, 1)
		resp, body = e.postAs("trade", quoteOnly)
		wantProblem(t, resp, body, http.StatusForbidden, `client "rsa-quotes" may not publish trade events`)

		noScope := "Bearer " + e.token(2, "ed-none", nil)
		resp, body = e.postAs("quote", noScope)
		wantProblem(t, resp, body, http.StatusForbidden, `"ed-none"`)

		limited := "Bearer " + e.token(1, "ec-limited", jwt.MapClaims{"scope": "publish:*", "sluice_max_priority": "critical",
			"sluice_rate": 0.01, "sluice_burst": 2})
		for range 2 {
			resp, body = e.postAs("trade", limited, priorityHeader, "critical")
			wantAccepted(t, resp, body, 1)
		}
		resp, body = e.postAs("quote", limited)
		wantProblem(t, resp, body, http.StatusTooManyRequests, `client "ec-limited" is over its rate of 0.01 requests/s (burst 2)`)

		// The same sub with another token shares the bucket.
		again := "Bearer " + e.token(1, "ec-limited", jwt.MapClaims{"scope": "publish:*", "sluice_rate": 0.01, "sluice_burst": 2, "jti": "2"})
		resp, body = e.postAs("quote", again)
		wantProblem(t, resp, body, http.StatusTooManyRequests, "ec-limited")

		cl, _, _ := e.srv.adm.clients.Authenticate(limited, "", time.Now())
		if cl == nil || cl.Name != "ec-limited" || cl.MaxPriority != admit.Critical {
			t.Errorf("limited token's client %+v", cl)
		}
		cl, _, _ = e.srv.adm.clients.Authenticate(quoteOnly, "", time.Now())
		if cl == nil || cl.MaxPriority != admit.Normal || !cl.Allows(schemas.KindQuote) || cl.Allows(schemas.KindTrade) {
			t.Errorf("quote-only token's client %+v", cl)
		}

		// API keys: as a bearer value without dots, or X-API-Key.
		resp, body = e.postAs("quote", "Bearer "+jwtTestAPIKey)
		wantAccepted(t, resp, body, 1)
		resp, body = e.postAs("quote", "", "X-API-Key", jwtTestAPIKey)
		wantAccepted(t, resp, body, 1)
		resp, body = e.postAs("quote", "Bearer wrong-key")
		wantProblem(t, resp, body, http.StatusUnauthorized, "unknown API key")

		if got := e.counter(`sluice_gateway_denials_total{reason="forbidden"}`); got != 2 {
			t.Errorf("denials{forbidden} = %d, want 2", got)
		}
		if got := e.counter(`sluice_gateway_denials_total{reason="rate_limited"}`); got != 2 {
			t.Errorf("denials{rate_limited} = %d, want 2", got)
		}
		if got := e.counter(`sluice_gateway_denials_total{reason="invalid_key"}`); got != 1 {
			t.Errorf("denials{invalid_key} = %d, want 1", got)
		}
		// 5 accepted requests, 5 events on NATS, nothing of the refused.
		_, evs := (&frameSub{t: t, ch: e.ingest}).events(5)
		if len(evs) != 5 || len(e.ingest) != 0 {
			t.Errorf("%d events published (and %d more frames), want 5", len(evs), len(e.ingest))
		}
		for _, secret := range []string{jwtTestAPIKey, "wrong-key", "eyJ"} {
			if strings.Contains(e.logs.String(), secret) {
				t.Errorf("%q in the logs:\n%s", secret, e.logs.String())
			}
		}
	})
}

// TestDenialAuditFlood: 1,000 bad tokens from one client give at most a
// few log lines and a count of 1,000.
func TestDenialAuditFlood(t *testing.T) {
	keys := testJWTKeys(t)
	e := newJWTEnv(t, "h2c", keys)
	bad := "Bearer " + e.token(0, "a", jwt.MapClaims{"aud": "someone-else"})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 125 {
				req, _ := http.NewRequest(http.MethodPost, e.base+"/v1/events/quote", strings.NewReader(quoteJSONBody("AAPL")))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", bad)
				resp, err := e.client.Do(req)
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("status %d, want 401", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	if got := e.counter(`sluice_gateway_denials_total{reason="invalid_token"}`); got != 1000 {
		t.Errorf("denials{invalid_token} = %d, want 1000", got)
	}
	lines := strings.Count(e.logs.String(), "request denied")
	if lines < 1 || lines > 3 {
		t.Errorf("1,000 denials logged %d lines, want 1 to 3:\n%s", lines, e.logs.String())
	}
	if !strings.Contains(e.logs.String(), "reason=invalid_token client=127.0.0.1") {
		t.Errorf("the audit line does not name the reason and the remote address:\n%s", e.logs.String())
	}
	e.wantNothingPublished()
}

// TestStreamsJWTScopes: a token's subscribe:<type> scopes gate GET
// /v1/streams/{type} as a key's subscribe list does.
func TestStreamsJWTScopes(t *testing.T) {
	keys := testJWTKeys(t)
	forModes(t, func(t *testing.T, mode string) {
		srv := jwttest.NewServer(t, keys[:]...)
		v, err := admit.NewVerifier(admit.JWTOptions{JWKS: srv.URL, Issuer: jwttest.Issuer, Audience: jwttest.Audience, HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Close)
		e := newTestEnv(t, mode, nil, func(o *Options) {
			o.Admission = AdmissionOptions{JWT: v}
			hub, err := stream.NewHub(stream.Options{Conn: o.Conn, Subjects: o.Subjects})
			if err != nil {
				t.Fatal(err)
			}
			o.Streams = hub
		})
		accept := []string{"Accept", "text/event-stream"}
		pub := "Bearer " + keys[1].Sign(t, jwttest.Claims("pub", jwt.MapClaims{"scope": "publish:*"}))
		resp, body := e.do("GET", "/v1/streams/quote?symbols=A", "", nil, append(accept, "Authorization", pub)...)
		wantProblem(t, resp, body, http.StatusForbidden, `client "pub" may not subscribe to quote events`)
		bad := "Bearer " + keys[1].Sign(t, jwttest.Claims("pub", jwt.MapClaims{"aud": "x", "scope": "subscribe:*"}))
		resp, body = e.do("GET", "/v1/streams/quote?symbols=A", "", nil, append(accept, "Authorization", bad)...)
		wantProblem(t, resp, body, http.StatusUnauthorized, "wrong audience")
		if got := e.counter(`sluice_gateway_denials_total{reason="invalid_token"}`); got != 1 {
			t.Errorf("denials{invalid_token} = %d, want 1", got)
		}

		reader := keys[2].Sign(t, jwttest.Claims("reader", jwt.MapClaims{"scope": "subscribe:quote"}))
		req, _ := http.NewRequest("GET", e.base+"/v1/streams/quote?symbols=A", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+reader)
		sresp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer sresp.Body.Close()
		line, err := bufio.NewReader(sresp.Body).ReadString('\n')
		if sresp.StatusCode != http.StatusOK || err != nil || !strings.Contains(line, stream.TypeSnapshotEnd) {
			t.Fatalf("permitted subscriber: %s, first line %q, %v", sresp.Status, line, err)
		}
	})
}
