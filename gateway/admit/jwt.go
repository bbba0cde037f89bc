package admit

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/sluice-dev/sluice/schemas"
)

// Defaults of [JWTOptions].
const (
	DefaultJWTLeeway             = 30 * time.Second
	DefaultJWKSRefresh           = time.Hour
	DefaultJWKSUnknownKIDRefetch = time.Minute
	DefaultMaxTokens             = 65536
	DefaultMaxRefusedTokens      = 4096
	DefaultMaxTokenBytes         = 8 << 10
)

// ErrJWTConfig wraps every problem of the JWT settings: the gateway does not
// start with a bad one.
var ErrJWTConfig = errors.New("invalid JWT settings")

// ValidJWTMethods are the signing algorithms a token may use: asymmetric
// ones only, so that neither "none" nor an HMAC keyed with a public key
// (algorithm confusion) is ever accepted.
var ValidJWTMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// JWTOptions configure bearer-token verification; JWKS, Issuer and Audience
// are required.
type JWTOptions struct {
	// JWKS is the key set: a file path or an https:// URL.
	JWKS string
	// Issuer and Audience are the required iss and aud claims.
	Issuer, Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat; default 30s.
	Leeway time.Duration
	// Refresh is how often a JWKS URL is fetched again; default 1h.
	Refresh time.Duration
	// UnknownKIDRefetch is the least time between two fetches of a JWKS URL
	// caused by a token with an unknown kid; default 1m.
	UnknownKIDRefetch time.Duration
	// MaxTokens bounds the verified tokens cached (and the token buckets
	// kept per sub); default 65536.
	MaxTokens int
	// MaxRefusedTokens bounds the refused tokens cached; default 4096.
	MaxRefusedTokens int
	// HTTPClient fetches a JWKS URL; default http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives JWKS fetch errors.
	Logger *slog.Logger
}

// TokenError is why a bearer token was refused. Its Description is safe to
// send back (RFC 6750 error_description): it never quotes the token.
type TokenError struct {
	// Description says what is wrong, in a few words.
	Description string
	// Expired is set for a token past its exp.
	Expired bool
	err     error
}

func (e *TokenError) Error() string { return "invalid token: " + e.Description }
func (e *TokenError) Unwrap() error { return e.err }

// Verifier turns JWT bearer tokens into clients. It caches verified tokens
// by their SHA-256 until they expire (bounded, clock eviction), so that a
// steady client pays one hash and one lookup per request; a JWKS refresh
// empties the cache, so a key removed from the set stops working at once.
//
// It also caches refused tokens (a bad signature, an unknown kid, a wrong
// issuer or audience, an expired token, bad claims) by their SHA-256, for
// UnknownKIDRefetch or until the key set changes, whichever comes first,
// at most MaxRefusedTokens of them (an arbitrary one is dropped past it): a
// flood of one bad token costs one signature check, not one per request.
// Requests that bring the same new token at the same instant may each
// verify it once. A token not valid yet is not cached: it becomes valid.
type Verifier struct {
	opts   JWTOptions
	parser *jwt.Parser
	keys   jwt.Keyfunc
	cancel context.CancelFunc
	gen    atomic.Uint64 // bumped by every replacement of the key set

	mu      sync.RWMutex
	cache   map[[32]byte]*tokenEntry
	ring    []*tokenEntry
	hand    int
	buckets map[string]*rate.Limiter // by sub
	refused map[[32]byte]refusal
}

// refusal is a cached refused token: refused again with err while the key
// set is at gen and before until (unix nanoseconds).
type refusal struct {
	err   *TokenError
	gen   uint64
	until int64
}

type tokenEntry struct {
	sum    [32]byte
	client Client
	exp    int64 // unix nanoseconds, leeway included
	gen    uint64
	slot   int         // index in the ring
	ref    atomic.Bool // used since the clock hand last passed
}

// genStorage bumps the verifier's generation whenever a refresh replaces
// the key set.
type genStorage struct {
	jwkset.Storage
	gen *atomic.Uint64
}

func (s genStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	err := s.Storage.KeyReplaceAll(ctx, given)
	s.gen.Add(1)
	return err
}

// NewVerifier loads the key set (reading the file, or fetching the URL
// once: a failed first fetch is logged and retried on the refresh schedule
// and on unknown kids) and returns a verifier; Close stops its refreshes.
func NewVerifier(opts JWTOptions) (*Verifier, error) {
	if opts.JWKS == "" || opts.Issuer == "" || opts.Audience == "" {
		return nil, fmt.Errorf("%w: --jwt-jwks, --jwt-issuer and --jwt-audience are all required", ErrJWTConfig)
	}
	if opts.Leeway <= 0 {
		opts.Leeway = DefaultJWTLeeway
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultJWKSRefresh
	}
	if opts.UnknownKIDRefetch <= 0 {
		opts.UnknownKIDRefetch = DefaultJWKSUnknownKIDRefetch
	}
	if opts.MaxTokens <= 0 {
		opts.MaxTokens = DefaultMaxTokens
	}
	if opts.MaxRefusedTokens <= 0 {
		opts.MaxRefusedTokens = DefaultMaxRefusedTokens
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{opts: opts, cache: make(map[[32]byte]*tokenEntry), buckets: make(map[string]*rate.Limiter),
		refused: make(map[[32]byte]refusal),
		parser: jwt.NewParser(jwt.WithValidMethods(ValidJWTMethods), jwt.WithIssuer(opts.Issuer),
			jwt.WithAudience(opts.Audience), jwt.WithExpirationRequired(), jwt.WithLeeway(opts.Leeway), jwt.WithIssuedAt())}
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	var storage jwkset.Storage
	var err error
	if strings.Contains(opts.JWKS, "://") {
		storage, err = v.httpStorage(ctx)
	} else {
		storage, err = fileStorage(opts.JWKS)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	kf, err := keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: storage})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %w", ErrJWTConfig, err)
	}
	v.keys = kf.Keyfunc
	return v, nil
}

func fileStorage(path string) (jwkset.Storage, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the JWKS file: %w", ErrJWTConfig, err)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("%w: JWKS file %s: %w", ErrJWTConfig, path, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w: JWKS file %s holds no keys", ErrJWTConfig, path)
	}
	st, err := set.ToStorage()
	if err != nil {
		return nil, fmt.Errorf("%w: JWKS file %s: %w", ErrJWTConfig, path, err)
	}
	return st, nil
}

func (v *Verifier) httpStorage(ctx context.Context) (jwkset.Storage, error) {
	u, err := url.Parse(v.opts.JWKS)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%w: --jwt-jwks must be a file or an https:// URL", ErrJWTConfig)
	}
	log := v.opts.Logger
	st, err := jwkset.NewStorageFromHTTP(v.opts.JWKS, jwkset.HTTPClientStorageOptions{
		Client: v.opts.HTTPClient, Ctx: ctx, HTTPTimeout: 10 * time.Second,
		NoErrorReturnFirstHTTPReq: true, RefreshInterval: v.opts.Refresh,
		Storage: genStorage{jwkset.NewMemoryStorage(), &v.gen},
		RefreshErrorHandler: func(_ context.Context, err error) {
			log.Error("fetching the JWKS failed; tokens signed by keys not yet fetched are refused", "url", v.opts.JWKS, "error", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJWTConfig, err)
	}
	// RateLimitWaitMax 1ms: a token whose kid is unknown while the
	// refetch limiter is empty is refused at once instead of waiting.
	c, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{v.opts.JWKS: st},
		RateLimitWaitMax:  time.Millisecond,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(v.opts.UnknownKIDRefetch), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrJWTConfig, err)
	}
	return c, nil
}

// Close stops the JWKS refreshes.
func (v *Verifier) Close() { v.cancel() }

// IsJWT reports whether a bearer value is to be verified as a JWT rather
// than looked up as an API key: it holds at least two dots (a JWS compact
// serialization has exactly two; API keys with two dots go in X-API-Key).
func IsJWT(bearer string) bool {
	if i := strings.IndexByte(bearer, '.'); i >= 0 {
		return strings.IndexByte(bearer[i+1:], '.') >= 0
	}
	return false
}

// tokenClaims are the claims sluice reads.
type tokenClaims struct {
	jwt.RegisteredClaims
	Scope       string   `json:"scope"`
	MaxPriority string   `json:"sluice_max_priority"`
	Rate        *float64 `json:"sluice_rate"`
	Burst       *int     `json:"sluice_burst"`
}

// Client returns the client of a token, or a *TokenError. A token seen
// before and not expired, or refused before (see [Verifier]), costs one
// SHA-256 and a map lookup.
func (v *Verifier) Client(token string, now time.Time) (*Client, error) {
	if len(token) > DefaultMaxTokenBytes {
		return nil, &TokenError{Description: "the token is too large"}
	}
	// Hashed in place: Sum256 only reads, and a copy would cost an
	// allocation of the token's size on every request.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	gen := v.gen.Load()
	v.mu.RLock()
	e := v.cache[sum]
	v.mu.RUnlock()
	if e != nil && e.gen == gen && now.UnixNano() < e.exp {
		if !e.ref.Load() {
			e.ref.Store(true)
		}
		return &e.client, nil
	}
	v.mu.RLock()
	r, wasRefused := v.refused[sum]
	v.mu.RUnlock()
	if wasRefused && r.gen == gen && now.UnixNano() < r.until {
		return nil, r.err
	}
	e, err := v.verify(token)
	if err != nil {
		v.refuse(sum, gen, now, err)
		return nil, err
	}
	e.sum, e.gen = sum, gen
	v.store(e)
	return &e.client, nil
}

// verify parses and verifies a token (signature, alg, iss, aud, exp, nbf,
// iat) and maps its claims, without the cache.
func (v *Verifier) verify(token string) (*tokenEntry, error) {
	var c tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &c, v.keys); err != nil {
		return nil, tokenError(err)
	}
	e := &tokenEntry{exp: c.ExpiresAt.Add(v.opts.Leeway).UnixNano()}
	if err := v.fill(&e.client, &c); err != nil {
		return nil, err
	}
	return e, nil
}

// fill maps the claims onto a client: the same model as the keys file.
func (v *Verifier) fill(cl *Client, c *tokenClaims) error {
	if c.Subject == "" {
		return &TokenError{Description: "the token has no sub"}
	}
	cl.Name, cl.MaxPriority = c.Subject, Normal
	if c.MaxPriority != "" {
		p, ok := ParsePriority(c.MaxPriority)
		if !ok {
			return &TokenError{Description: "sluice_max_priority is not low, normal, high or critical"}
		}
		cl.MaxPriority = p
	}
	cl.types = typesScoped // none until a publish scope names a type
	for _, s := range strings.Fields(c.Scope) {
		verb, t, ok := strings.Cut(s, ":")
		k, known := schemas.ParseKind(t)
		switch {
		case !ok:
			// other scopes (openid, ...) are not ours
		case verb == "publish" && t == "*":
			cl.types = 0
		case verb == "publish" && known && cl.types != 0:
			cl.types |= 1 << k
		case verb == "subscribe" && t == "*":
			cl.subscribe = 0xff
		case verb == "subscribe" && known:
			cl.subscribe |= 1 << k
		}
	}
	if c.Rate != nil && *c.Rate > 0 {
		burst := 0
		if c.Burst != nil {
			burst = *c.Burst
		}
		cl.setLimit(*c.Rate, burst)
		cl.limiter = v.bucket(c.Subject, cl.rate, cl.burst)
	}
	return nil
}

// bucket returns the token bucket of a sub, shared by all its tokens; a
// token with other limits resets it to them.
func (v *Verifier) bucket(sub string, r float64, burst int) *rate.Limiter {
	v.mu.Lock()
	defer v.mu.Unlock()
	l := v.buckets[sub]
	if l != nil && float64(l.Limit()) == r && l.Burst() == burst {
		return l
	}
	if l == nil && len(v.buckets) >= v.opts.MaxTokens {
		for k := range v.buckets { // drop an arbitrary one: bounded memory
			delete(v.buckets, k)
			break
		}
	}
	l = rate.NewLimiter(rate.Limit(r), burst)
	v.buckets[sub] = l
	return l
}

// store caches a verified token, evicting by clock past MaxTokens.
func (v *Verifier) store(e *tokenEntry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if old := v.cache[e.sum]; old != nil { // re-verified after a refresh
		e.slot = old.slot
		v.ring[e.slot] = e
		v.cache[e.sum] = e
		return
	}
	if len(v.ring) < v.opts.MaxTokens {
		e.slot = len(v.ring)
		v.ring = append(v.ring, e)
		v.cache[e.sum] = e
		return
	}
	for {
		victim := v.ring[v.hand]
		if !victim.ref.Load() {
			delete(v.cache, victim.sum)
			e.slot = v.hand
			v.ring[v.hand] = e
			v.cache[e.sum] = e
			v.hand = (v.hand + 1) % len(v.ring)
			return
		}
		victim.ref.Store(false)
		v.hand = (v.hand + 1) % len(v.ring)
	}
}

// refuse caches a refused token, unless it may become valid (nbf or iat
// ahead of the clock).
func (v *Verifier) refuse(sum [32]byte, gen uint64, now time.Time, err error) {
	var te *TokenError
	if !errors.As(err, &te) || errors.Is(err, jwt.ErrTokenNotValidYet) || errors.Is(err, jwt.ErrTokenUsedBeforeIssued) {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.refused[sum]; !ok && len(v.refused) >= v.opts.MaxRefusedTokens {
		for k := range v.refused { // drop an arbitrary one: bounded memory
			delete(v.refused, k)
			break
		}
	}
	v.refused[sum] = refusal{err: te, gen: gen, until: now.Add(v.opts.UnknownKIDRefetch).UnixNano()}
}

// Cached returns the number of tokens in the cache.
func (v *Verifier) Cached() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.cache)
}

func tokenError(err error) *TokenError {
	d := "the token could not be verified"
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		d = "the token is malformed"
	case errors.Is(err, jwt.ErrTokenExpired):
		return &TokenError{Description: "the token is expired", Expired: true, err: err}
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		d = "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		d = "the token has the wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		d = "the token has the wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		d = "the token lacks a required claim (exp, iss or aud)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		d = "the token's signature is not valid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		d = "the token's algorithm or key is not accepted"
	}
	return &TokenError{Description: d, err: err}
}
