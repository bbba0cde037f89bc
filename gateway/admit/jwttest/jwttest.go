// Package jwttest is a token issuer for tests of sluice's JWT bearer
// tokens: keys generated on the spot (RSA, ECDSA P-256, Ed25519), the JWKS
// of any subset of them (as a file or served over TLS, counting fetches) and
// signed tokens. It is for tests only.
package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Issuer and Audience are the iss and aud of [Claims].
const (
	Issuer   = "https://issuer.test"
	Audience = "sluice-test"
)

// Key is one signing key with its kid and JWS algorithm.
type Key struct {
	KID    string
	Method jwt.SigningMethod
	Signer crypto.Signer
}

// NewRSA, NewEC and NewEd generate keys.
func NewRSA(t testing.TB, kid string) *Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{KID: kid, Method: jwt.SigningMethodRS256, Signer: k}
}

// NewEC generates an ECDSA P-256 key (ES256).
func NewEC(t testing.TB, kid string) *Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{KID: kid, Method: jwt.SigningMethodES256, Signer: k}
}

// NewEd generates an Ed25519 key (EdDSA).
func NewEd(t testing.TB, kid string) *Key {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{KID: kid, Method: jwt.SigningMethodEdDSA, Signer: k}
}

// Sign returns a token of claims signed by k, with k's kid.
func (k *Key) Sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.Method, claims)
	tok.Header["kid"] = k.KID
	s, err := tok.SignedString(k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Claims returns valid claims for sub (iss, aud, iat, exp in an hour) with
// extra added.
func Claims(sub string, extra jwt.MapClaims) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": Issuer, "aud": Audience, "sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// JWKS returns the JWK Set of the public halves of keys.
func JWKS(t testing.TB, keys ...*Key) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.Signer.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.KID, ALG: jwkset.ALG(k.Method.Alg()), USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// WriteJWKS writes the JWKS of keys to a file in t.TempDir and returns its
// path.
func WriteJWKS(t testing.TB, keys ...*Key) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, JWKS(t, keys...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Server serves a JWKS over TLS and counts its fetches.
type Server struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	body []byte
}

// NewServer serves the JWKS of keys over TLS until the test ends.
func NewServer(t testing.TB, keys ...*Key) *Server {
	t.Helper()
	s := &Server{body: JWKS(t, keys...)}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		b := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// Set replaces the served JWKS.
func (s *Server) Set(t testing.TB, keys ...*Key) {
	b := JWKS(t, keys...)
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

// Hits returns the number of fetches so far.
func (s *Server) Hits() int64 { return s.hits.Load() }

// PublicPEM returns k's public key as PEM (PKIX), the bytes an algorithm
// confusion attack uses as an HMAC secret.
func PublicPEM(t testing.TB, k *Key) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
