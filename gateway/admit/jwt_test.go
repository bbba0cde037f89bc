package admit

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluice-dev/sluice/gateway/admit/jwttest"
	"github.com/sluice-dev/sluice/ops/opstest"
	"github.com/sluice-dev/sluice/schemas"
)

// testKeys are generated once: RSA key generation takes a while.
type testKeys struct{ rsa, ec, ed *jwttest.Key }

func newTestKeys(t testing.TB) testKeys {
	return testKeys{jwttest.NewRSA(t, "rsa1"), jwttest.NewEC(t, "ec1"), jwttest.NewEd(t, "ed1")}
}

func fileVerifier(t testing.TB, keys ...*jwttest.Key) *Verifier {
	t.Helper()
	v, err := NewVerifier(JWTOptions{JWKS: jwttest.WriteJWKS(t, keys...), Issuer: jwttest.Issuer, Audience: jwttest.Audience})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// TestJWTClaimShapes: each claim shape maps to the client the keys file
// would give: name, permissions by type, max priority and token bucket.
func TestJWTClaimShapes(t *testing.T) {
	k := newTestKeys(t)
	v := fileVerifier(t, k.rsa, k.ec, k.ed)
	type want struct {
		prio     Priority
		pub, sub [2]bool // quote, trade
		rate     float64
		burst    int
		limited  bool
	}
	f := func(key *jwttest.Key, extra jwt.MapClaims, w want) {
		t.Helper()
		tok := key.Sign(t, jwttest.Claims("svc-"+key.KID, extra))
		cl, err := v.Client(tok, time.Now())
		if err != nil {
			t.Fatalf("%s %v: %v", key.KID, extra, err)
		}
		if cl.Name != "svc-"+key.KID || cl.MaxPriority != w.prio {
			t.Errorf("%s %v: client %q priority %s, want %q %s", key.KID, extra, cl.Name, cl.MaxPriority, "svc-"+key.KID, w.prio)
		}
		for i, kind := range []schemas.Kind{schemas.KindQuote, schemas.KindTrade} {
			if cl.Allows(kind) != w.pub[i] || cl.MaySubscribe(kind) != w.sub[i] {
				t.Errorf("%s %v: %s publish %v subscribe %v, want %v %v", key.KID, extra, kind,
					cl.Allows(kind), cl.MaySubscribe(kind), w.pub[i], w.sub[i])
			}
		}
		if r, b := cl.Limits(); r != w.rate || b != w.burst || (cl.limiter != nil) != w.limited {
			t.Errorf("%s %v: rate %g burst %d, want %g %d", key.KID, extra, r, b, w.rate, w.burst)
		}
	}
	none := [2]bool{}
	f(k.rsa, jwt.MapClaims{"scope": "publish:quote"}, want{prio: Normal, pub: [2]bool{true, false}, sub: none})
	f(k.ec, jwt.MapClaims{"scope": "openid publish:* subscribe:trade", "sluice_max_priority": "critical",
		"sluice_rate": 2.5, "sluice_burst": 5}, want{prio: Critical, pub: [2]bool{true, true}, sub: [2]bool{false, true}, rate: 2.5, burst: 5, limited: true})
	f(k.ed, jwt.MapClaims{"scope": "publish:trade subscribe:*", "sluice_max_priority": "low", "sluice_rate": 10},
		want{prio: Low, pub: [2]bool{false, true}, sub: [2]bool{true, true}, rate: 10, burst: 10, limited: true})
	f(k.rsa, nil, want{prio: Normal, pub: none, sub: none})
}

// TestJWTRefused: every token that must not pass gets a TokenError whose
// description does not quote it.
func TestJWTRefused(t *testing.T) {
	k := newTestKeys(t)
	v := fileVerifier(t, k.rsa, k.ec)
	other := jwttest.NewEC(t, "ec-unknown")
	now := time.Now()
	pubDER, err := x509.MarshalPKIXPublicKey(k.rsa.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(m, c)
		tok.Header["kid"] = "rsa1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := k.rsa.Sign(t, jwttest.Claims("a", nil))
	parts := strings.Split(valid, ".")
	cases := []struct {
		name, token, want string
	}{
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwttest.Claims("a", nil)), "signature"},
		{"HS256 keyed with the RSA public key", sign(jwt.SigningMethodHS256, pubPEM, jwttest.Claims("a", nil)), "signature"},
		{"HS256 keyed with the DER public key", sign(jwt.SigningMethodHS256, pubDER, jwttest.Claims("a", nil)), "signature"},
		{"expired", k.rsa.Sign(t, jwttest.Claims("a", jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})), "expired"},
		{"not yet valid", k.rsa.Sign(t, jwttest.Claims("a", jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()})), "not valid yet"},
		{"issued in the future", k.rsa.Sign(t, jwttest.Claims("a", jwt.MapClaims{"iat": now.Add(time.Minute).Unix()})), "not valid yet"},
		{"wrong issuer", k.rsa.Sign(t, jwttest.Claims("a", jwt.MapClaims{"iss": "https://evil.test"})), "wrong issuer"},
		{"wrong audience", k.rsa.Sign(t, jwttest.Claims("a", jwt.MapClaims{"aud": "other"})), "wrong audience"},
		{"no exp", k.rsa.Sign(t, jwt.MapClaims{"iss": jwttest.Issuer, "aud": jwttest.Audience, "sub": "a"}), "required claim"},
		{"no sub", k.rsa.Sign(t, jwttest.Claims("", nil)), "no sub"},
		{"bad priority", k.rsa.Sign(t, jwttest.Claims("a", jwt.MapClaims{"sluice_max_priority": "max"})), "sluice_max_priority"},
		{"unknown kid", other.Sign(t, jwttest.Claims("a", nil)), "algorithm or key"},
		{"tampered payload", parts[0] + "." + parts[1] + "x." + parts[2], "malformed"},
		{"tampered signature", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4] + "AAAA", "signature"},
		{"4 KiB of dots", strings.Repeat(".", 4<<10), "malformed"},
		{"1 MB of dots", strings.Repeat(".", 1<<20), "too large"},
	}
	for _, c := range cases {
		cl, err := v.Client(c.token, now)
		var te *TokenError
		if cl != nil || !errors.As(err, &te) {
			t.Errorf("%s: client %v, error %v; want a TokenError", c.name, cl, err)
			continue
		}
		if !strings.Contains(te.Description, c.want) {
			t.Errorf("%s: description %q, want it to contain %q", c.name, te.Description, c.want)
		}
		if len(c.token) > 8 && strings.Contains(te.Error(), c.token[:8]) {
			t.Errorf("%s: the error quotes the token: %q", c.name, te.Error())
		}
	}
	if n := v.Cached(); n != 0 {
		t.Errorf("%d refused tokens cached", n)
	}
}

// TestJWTLeeway: a token expired less than the leeway ago still passes.
func TestJWTLeeway(t *testing.T) {
	k := jwttest.NewEd(t, "ed1")
	v := fileVerifier(t, k)
	tok := k.Sign(t, jwttest.Claims("a", jwt.MapClaims{"exp": time.Now().Add(-DefaultJWTLeeway / 2).Unix()}))
	if _, err := v.Client(tok, time.Now()); err != nil {
		t.Fatalf("a token expired %s ago: %v", DefaultJWTLeeway/2, err)
	}
	tok = k.Sign(t, jwttest.Claims("a", jwt.MapClaims{"exp": time.Now().Add(-DefaultJWTLeeway - 2*time.Second).Unix()}))
	if _, err := v.Client(tok, time.Now()); err == nil {
		t.Fatal("a token expired longer than the leeway ago was accepted")
	}
}

// TestJWTCache: a token seen before is served from the cache (the same
// client), the cache is bounded, and a sub's bucket is shared by its tokens.
func TestJWTCache(t *testing.T) {
	k := jwttest.NewEd(t, "ed1")
	v, err := NewVerifier(JWTOptions{JWKS: jwttest.WriteJWKS(t, k), Issuer: jwttest.Issuer, Audience: jwttest.Audience, MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	now := time.Now()
	toks := make([]string, 10)
	for i := range toks {
		toks[i] = k.Sign(t, jwttest.Claims("same", jwt.MapClaims{"jti": fmt.Sprint(i), "sluice_rate": 1, "sluice_burst": 1}))
	}
	a, _ := v.Client(toks[0], now)
	b, _ := v.Client(toks[0], now)
	if a == nil || a != b {
		t.Fatal("the second use of a token was verified again")
	}
	for _, tok := range toks {
		if _, err := v.Client(tok, now); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.Cached(); n != 3 {
		t.Errorf("%d tokens cached, want the bound 3", n)
	}
	c0, _ := v.Client(toks[0], now)
	c9, _ := v.Client(toks[9], now)
	if ok, _ := c0.Take(now); !ok {
		t.Fatal("the first request of a sub was refused")
	}
	if ok, _ := c9.Take(now); ok {
		t.Error("ten tokens of one sub got more than its burst of 1")
	}
}

// TestJWTConfig: missing settings and an http:// JWKS are refused at start.
func TestJWTConfig(t *testing.T) {
	for _, o := range []JWTOptions{
		{JWKS: "x.json", Issuer: "i"},
		{JWKS: "http://idp.test/jwks", Issuer: "i", Audience: "a"},
		{JWKS: "/nonexistent/jwks.json", Issuer: "i", Audience: "a"},
	} {
		if _, err := NewVerifier(o); !errors.Is(err, ErrJWTConfig) {
			t.Errorf("%+v: %v, want ErrJWTConfig", o, err)
		}
	}
}

func TestIsJWT(t *testing.T) {
	for s, want := range map[string]bool{"a.b.c": true, "abc": false, "a.b": false, "..": true, "k-1.2": false} {
		if IsJWT(s) != want {
			t.Errorf("IsJWT(%q) = %v", s, !want)
		}
	}
}

// BenchmarkJWT: verification cold (signature checked) against a token
// served from the cache, and a bad token refused from the cache, for each
// algorithm.
func BenchmarkJWT(b *testing.B) {
	k := newTestKeys(b)
	v := fileVerifier(b, k.rsa, k.ec, k.ed)
	for _, key := range []*jwttest.Key{k.rsa, k.ec, k.ed} {
		tok := key.Sign(b, jwttest.Claims("bench", jwt.MapClaims{"scope": "publish:*", "sluice_rate": 1e9}))
		b.Run(key.Method.Alg()+"/cold", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		bad := tok[:len(tok)-4] + "AAAA"
		b.Run(key.Method.Alg()+"/refused", func(b *testing.B) {
			b.ReportAllocs()
			now := time.Now()
			for b.Loop() {
				if _, err := v.Client(bad, now); err == nil {
					b.Fatal("a tampered token passed")
				}
			}
		})
		b.Run(key.Method.Alg()+"/cached", func(b *testing.B) {
			b.ReportAllocs()
			now := time.Now()
			for b.Loop() {
				if _, err := v.Client(tok, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func urlVerifier(t *testing.T, srv *jwttest.Server, o JWTOptions) *Verifier {
	t.Helper()
	o.JWKS, o.Issuer, o.Audience, o.HTTPClient = srv.URL+"/jwks.json", jwttest.Issuer, jwttest.Audience, srv.Client()
	v, err := NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// TestJWKSUnknownKIDFlood: tokens with unknown kids refetch the JWKS at
// most once per UnknownKIDRefetch, and are refused at once meanwhile.
func TestJWKSUnknownKIDFlood(t *testing.T) {
	k := jwttest.NewEC(t, "ec1")
	srv := jwttest.NewServer(t, k)
	v := urlVerifier(t, srv, JWTOptions{UnknownKIDRefetch: time.Hour})
	if _, err := v.Client(k.Sign(t, jwttest.Claims("a", nil)), time.Now()); err != nil {
		t.Fatal(err)
	}
	start := srv.Hits()
	for i := range 500 {
		rogue := &jwttest.Key{KID: fmt.Sprint("kid-", i), Method: k.Method, Signer: k.Signer}
		if _, err := v.Client(rogue.Sign(t, jwttest.Claims("a", nil)), time.Now()); err == nil {
			t.Fatalf("a token with the unknown kid %s passed", rogue.KID)
		}
	}
	if n := srv.Hits() - start; n > 1 {
		t.Errorf("500 unknown kids fetched the JWKS %d times, want at most 1 (one per UnknownKIDRefetch)", n)
	}
}

// TestJWKSRemovedKey: a token signed by a key that a refresh removed from
// the JWKS is refused, even though it was verified and cached before; a
// key added to the set is taken on its first token (unknown kid refetch).
func TestJWKSRemovedKey(t *testing.T) {
	old, next := jwttest.NewRSA(t, "rsa-old"), jwttest.NewEd(t, "ed-next")
	srv := jwttest.NewServer(t, old)
	v := urlVerifier(t, srv, JWTOptions{Refresh: 50 * time.Millisecond})
	tokOld := old.Sign(t, jwttest.Claims("a", nil))
	if _, err := v.Client(tokOld, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv.Set(t, next)
	opstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if _, err := v.Client(tokOld, time.Now()); err == nil {
			return errors.New("a token of a key removed from the JWKS still passes")
		}
		return nil
	})
	if _, err := v.Client(next.Sign(t, jwttest.Claims("b", nil)), time.Now()); err != nil {
		t.Fatalf("the new key's token: %v", err)
	}
}

// countKeyLookups makes v count its key lookups: one per signature check.
func countKeyLookups(v *Verifier) *atomic.Int64 {
	var n atomic.Int64
	keys := v.keys
	v.keys = func(t *jwt.Token) (any, error) { n.Add(1); return keys(t) }
	return &n
}

// TestJWTRefusedCache: a flood of one bad token costs one signature check;
// the refusals cached are bounded, expire after UnknownKIDRefetch, and a
// token not valid yet is checked again on each use (it will be valid).
func TestJWTRefusedCache(t *testing.T) {
	k := jwttest.NewEd(t, "ed1")
	v, err := NewVerifier(JWTOptions{JWKS: jwttest.WriteJWKS(t, k), Issuer: jwttest.Issuer, Audience: jwttest.Audience,
		MaxRefusedTokens: 3, UnknownKIDRefetch: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	lookups := countKeyLookups(v)
	now := time.Now()
	parts := strings.Split(k.Sign(t, jwttest.Claims("a", nil)), ".")
	bad := parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4] + "AAAA"
	for range 1000 {
		if _, err := v.Client(bad, now); err == nil || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("the tampered token: %v, want a bad signature", err)
		}
	}
	if n := lookups.Load(); n != 1 {
		t.Errorf("1000 uses of one bad token checked its signature %d times, want 1", n)
	}
	if _, err := v.Client(bad, now.Add(time.Minute)); err == nil {
		t.Fatal("the tampered token passed after its refusal expired")
	}
	if n := lookups.Load(); n != 2 {
		t.Errorf("%d signature checks after the refusal expired, want 2", n)
	}
	for i := range 10 {
		tok := k.Sign(t, jwttest.Claims("a", jwt.MapClaims{"iss": fmt.Sprint("https://evil.test/", i)}))
		if _, err := v.Client(tok, now); err == nil {
			t.Fatal("a token of the wrong issuer passed")
		}
	}
	v.mu.RLock()
	n := len(v.refused)
	v.mu.RUnlock()
	if n > 3 {
		t.Errorf("%d refused tokens cached, want at most the bound 3", n)
	}
	// The parser reads the clock itself: the token stays not valid yet.
	early := k.Sign(t, jwttest.Claims("a", jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}))
	before := lookups.Load()
	for range 3 {
		if _, err := v.Client(early, now); err == nil {
			t.Fatal("a token not valid yet passed")
		}
	}
	if n := lookups.Load() - before; n != 3 {
		t.Errorf("a token not valid yet used 3 times was checked %d times, want 3 (never cached as refused)", n)
	}
}

// TestJWKSRefusedThenAdded: a token refused for its unknown kid passes once
// a refresh brings its key, though its cached refusal has not expired.
func TestJWKSRefusedThenAdded(t *testing.T) {
	old, next := jwttest.NewEC(t, "ec-old"), jwttest.NewEd(t, "ed-next")
	srv := jwttest.NewServer(t, old)
	v := urlVerifier(t, srv, JWTOptions{Refresh: 50 * time.Millisecond, UnknownKIDRefetch: time.Hour})
	tok := next.Sign(t, jwttest.Claims("a", nil))
	if _, err := v.Client(tok, time.Now()); err == nil {
		t.Fatal("a token of a key not in the JWKS passed")
	}
	srv.Set(t, old, next)
	opstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		_, err := v.Client(tok, time.Now())
		return err
	})
}
