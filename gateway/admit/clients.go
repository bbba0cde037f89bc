package admit

import (
	"crypto/sha256"
	"math"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sluice-dev/sluice/schemas"
)

// Client is an identified caller with its limits.
type Client struct {
	// Name is the client's name: the key's client, or the remote address.
	Name string
	// MaxPriority is the highest priority it may use.
	MaxPriority Priority
	types       uint8 // bit per schemas.Kind allowed; 0 means all
	subscribe   uint8 // bit per schemas.Kind it may subscribe to
	limiter     *rate.Limiter
	rate        float64
	burst       int
}

// typesScoped marks a types set given by a token's scope: with no kind
// bit beside it, nothing is allowed (0 still means all).
const typesScoped = 1 << 7

// Allows reports whether the client may publish events of kind k.
func (c *Client) Allows(k schemas.Kind) bool { return c.types == 0 || c.types&(1<<k) != 0 }

// MaySubscribe reports whether the client may subscribe to the stream of
// kind k. A client identified by its address (no keys file) may.
func (c *Client) MaySubscribe(k schemas.Kind) bool { return c.subscribe&(1<<k) != 0 }

// Take takes one token from the client's bucket. When the bucket is empty
// it returns false and the seconds until a token is back (at least 1).
func (c *Client) Take(now time.Time) (ok bool, retryAfter int) {
	if c.limiter == nil {
		return true, 0
	}
	if c.limiter.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - c.limiter.TokensAt(now)
	return false, int(max(math.Ceil(missing/c.rate), 1))
}

// Limits returns the client's rate and burst; rate 0 means unlimited.
func (c *Client) Limits() (float64, int) { return c.rate, c.burst }

// Remaining returns the whole tokens left in the bucket.
func (c *Client) Remaining(now time.Time) int {
	if c.limiter == nil {
		return 0
	}
	return int(max(c.limiter.TokensAt(now), 0))
}

// ClientOptions configure client identification; the zero value means no
// keys (clients are their remote addresses) and no per-address limits.
type ClientOptions struct {
	// Keys, when set, requires an API key on every request.
	Keys *KeysFile
	// AddressRate and AddressBurst limit each remote address when no keys
	// file is used; 0 means unlimited.
	AddressRate  float64
	AddressBurst int
	// AddressPriority is the maximum priority of address clients; default
	// Critical (no keys: everyone is trusted).
	AddressPriority *Priority
	// MaxAddresses bounds the address buckets kept; default 65536.
	MaxAddresses int
	// JWT, when set, accepts JWT bearer tokens (see [IsJWT]) and requires
	// a key or a token on every request.
	JWT *Verifier
}

// Clients identifies callers.
type Clients struct {
	opts  ClientOptions
	byKey map[[32]byte]*Client
	open  *Client // every address client when no per-address limits

	mu    sync.Mutex
	addrs map[string]*Client
}

// NewClients builds the identity table.
func NewClients(opts ClientOptions) *Clients {
	if opts.MaxAddresses <= 0 {
		opts.MaxAddresses = 65536
	}
	maxAddr := Critical
	if opts.AddressPriority != nil {
		maxAddr = *opts.AddressPriority
	}
	c := &Clients{opts: opts, addrs: make(map[string]*Client)}
	c.open = &Client{Name: "anonymous", MaxPriority: maxAddr, subscribe: 0xff}
	if opts.Keys != nil {
		c.byKey = make(map[[32]byte]*Client, len(opts.Keys.Keys))
		for _, k := range opts.Keys.Keys {
			var sum [32]byte
			for i := range sum {
				sum[i] = unhex(k.SHA256[2*i])<<4 | unhex(k.SHA256[2*i+1])
			}
			cl := &Client{Name: k.Client, MaxPriority: Normal}
			if k.MaxPriority != "" {
				cl.MaxPriority, _ = ParsePriority(k.MaxPriority)
			}
			for _, t := range k.Types {
				kind, _ := schemas.ParseKind(t)
				cl.types |= 1 << kind
			}
			for _, t := range k.Subscribe {
				kind, _ := schemas.ParseKind(t)
				cl.subscribe |= 1 << kind
			}
			cl.setLimit(k.Rate, k.Burst)
			c.byKey[sum] = cl
		}
	}
	return c
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func (cl *Client) setLimit(r float64, burst int) {
	if r <= 0 {
		return
	}
	if burst <= 0 {
		burst = int(max(1, math.Ceil(r)))
	}
	cl.rate, cl.burst = r, burst
	cl.limiter = rate.NewLimiter(rate.Limit(r), burst)
}

// KeysRequired reports whether requests must carry an API key or a token.
func (c *Clients) KeysRequired() bool { return c.byKey != nil || c.opts.JWT != nil }

// ByKey returns the client of an API key, nil if unknown.
//
// The lookup is by the key's SHA-256, not by the key: whatever time the map
// takes to compare depends on the hashes only, and learning a stored hash's
// leading bytes from timing does not help to find a key that has them (a
// preimage search), so no byte of a key leaks; the keys themselves are
// never held.
func (c *Clients) ByKey(key string) *Client {
	if key == "" {
		return nil
	}
	return c.byKey[sha256.Sum256([]byte(key))]
}

// Authenticate returns the client of a request's credentials: a JWT bearer
// token when JWT is on and the bearer value looks like one ([IsJWT]), else
// an API key (Authorization: Bearer or X-API-Key). A nil client comes with
// the reason and a description that is safe to send back (it never quotes
// the credential).
func (c *Clients) Authenticate(authorization, xAPIKey string, now time.Time) (*Client, Denial, string) {
	if c.opts.JWT != nil {
		if v, ok := strings.CutPrefix(authorization, "Bearer "); ok && IsJWT(v) {
			cl, err := c.opts.JWT.Client(strings.TrimSpace(v), now)
			if err != nil {
				te, _ := err.(*TokenError)
				if te != nil && te.Expired {
					return nil, DenyExpiredToken, te.Description
				}
				if te != nil {
					return nil, DenyInvalidToken, te.Description
				}
				return nil, DenyInvalidToken, "the token could not be verified"
			}
			return cl, 0, ""
		}
	}
	key := KeyFromHeaders(authorization, xAPIKey)
	if key == "" {
		return nil, DenyMissing, "no credentials"
	}
	if cl := c.ByKey(key); cl != nil {
		return cl, 0, ""
	}
	return nil, DenyInvalidKey, "unknown API key"
}

// ByAddress returns the client of a remote address ("ip:port"; the port is
// ignored).
func (c *Clients) ByAddress(remote string) *Client {
	if c.opts.AddressRate <= 0 {
		return c.open
	}
	host := remote
	if i := strings.LastIndexByte(remote, ':'); i > 0 {
		host = strings.Trim(remote[:i], "[]")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.addrs[host]
	if !ok {
		if len(c.addrs) >= c.opts.MaxAddresses {
			for k := range c.addrs { // drop an arbitrary one: bounded memory
				delete(c.addrs, k)
				break
			}
		}
		cl = &Client{Name: host, MaxPriority: c.open.MaxPriority, subscribe: 0xff}
		cl.setLimit(c.opts.AddressRate, c.opts.AddressBurst)
		c.addrs[host] = cl
	}
	return cl
}

// KeyFromHeaders extracts the API key from "Authorization: Bearer <key>" or
// "X-API-Key: <key>".
func KeyFromHeaders(authorization, xAPIKey string) string {
	if v, ok := strings.CutPrefix(authorization, "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(xAPIKey)
}
