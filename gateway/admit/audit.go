package admit

import (
	"log/slog"
	"sync"
	"time"
)

// Denial is why a request was refused before its body was read.
type Denial uint8

// The denials the audit tells apart.
const (
	DenyMissing      Denial = iota // 401: no key or token
	DenyInvalidKey                 // 401: an unknown API key
	DenyInvalidToken               // 401: a token that does not verify
	DenyExpiredToken               // 401: a token past its exp
	DenyForbidden                  // 403: a type outside the client's permissions
	DenyRateLimited                // 429: the client's token bucket is empty
	NumDenials
)

var denialNames = [NumDenials]string{"missing_credentials", "invalid_key", "invalid_token", "expired_token", "forbidden", "rate_limited"}

// String returns the denial's name, as in logs and metric labels.
func (d Denial) String() string { return denialNames[d] }

// Defaults of [AuditOptions].
const (
	DefaultAuditInterval   = 10 * time.Second
	DefaultAuditMaxClients = 4096
)

// AuditOptions configure the denial audit; the zero value logs nothing.
type AuditOptions struct {
	// Logger receives the audit lines.
	Logger *slog.Logger
	// Interval is the least time between two lines of one client and
	// reason; default 10s.
	Interval time.Duration
	// MaxClients bounds the clients tracked; past it denials of new clients
	// are told under the client "(others)"; default 4096.
	MaxClients int
}

// Audit logs denials once per client and reason per interval, with the
// number suppressed since the previous line: never a line per request under
// a flood, and bounded memory. The client is a name that is never a secret:
// the keys file's client, a token's sub, or the remote address for 401s.
type Audit struct {
	opts AuditOptions

	mu      sync.Mutex
	entries map[auditKey]*auditEntry
	flushed time.Time
}

type auditKey struct {
	client string
	reason Denial
}

type auditEntry struct {
	last       time.Time // of the last line
	suppressed int64     // denials since the last line
	detail     string    // of the last denial
}

// NewAudit returns an audit.
func NewAudit(opts AuditOptions) *Audit {
	if opts.Interval <= 0 {
		opts.Interval = DefaultAuditInterval
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = DefaultAuditMaxClients
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Audit{opts: opts, entries: make(map[auditKey]*auditEntry)}
}

// Deny records a denial; it logs a line when the client has had none for
// this reason within the interval. detail must hold no secret.
func (a *Audit) Deny(reason Denial, client, detail string, now time.Time) {
	k := auditKey{client, reason}
	a.mu.Lock()
	e := a.entries[k]
	if e == nil {
		if len(a.entries) >= a.opts.MaxClients {
			k.client = "(others)"
			e = a.entries[k]
		}
		if e == nil {
			e = &auditEntry{}
			a.entries[k] = e
		}
	}
	if !e.last.IsZero() && now.Sub(e.last) < a.opts.Interval {
		e.suppressed++
		e.detail = detail
		a.mu.Unlock()
		return
	}
	suppressed := e.suppressed
	e.last, e.suppressed, e.detail = now, 0, ""
	a.mu.Unlock()
	a.line("request denied", k, detail, suppressed)
}

func (a *Audit) line(msg string, k auditKey, detail string, suppressed int64) {
	a.opts.Logger.Warn(msg, "reason", k.reason.String(), "client", k.client,
		"detail", detail, "suppressed", suppressed)
}

// Flush logs, for each client whose interval has passed, the denials
// suppressed since its last line, and forgets clients idle for an
// interval. It costs nothing until an interval has passed since the last
// flush; call it from a ticker.
func (a *Audit) Flush(now time.Time) {
	a.mu.Lock()
	if now.Sub(a.flushed) < a.opts.Interval {
		a.mu.Unlock()
		return
	}
	a.flushed = now
	type pending struct {
		k          auditKey
		detail     string
		suppressed int64
	}
	var out []pending
	for k, e := range a.entries {
		if now.Sub(e.last) < a.opts.Interval {
			continue
		}
		if e.suppressed > 0 {
			out = append(out, pending{k, e.detail, e.suppressed})
			e.last, e.suppressed, e.detail = now, 0, ""
			continue
		}
		delete(a.entries, k)
	}
	a.mu.Unlock()
	for _, p := range out {
		a.line("requests denied since the last line", p.k, p.detail, p.suppressed)
	}
}
