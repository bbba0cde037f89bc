package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/gateway/admit"
	"github.com/sluice-dev/sluice/schemas"
)

// AdmissionOptions configure admission control; the zero value admits
// everyone (no keys, no per-address limits) with the default concurrency
// limits and shedding bounds.
type AdmissionOptions struct {
	// Keys, when set, requires an API key (Authorization: Bearer or
	// X-API-Key) on every data request; see admit.KeysFile.
	Keys *admit.KeysFile
	// AddressRate and AddressBurst limit each remote address when no keys
	// file is set; 0 means unlimited.
	AddressRate  float64
	AddressBurst int
	// Concurrency configures the adaptive concurrency limit of each group.
	Concurrency admit.AIMDOptions
	// Shed configures queue-depth shedding of each group.
	Shed admit.ShedOptions
	// QueueDelays overrides Shed.MaxQueueDelay for the group of a type
	// (--shed-max-queue-delay quote=250ms,trade=5m); the first type of a
	// group named here sets the group's.
	QueueDelays map[schemas.Kind]time.Duration
	// Groups maps each kind to the worker group that processes it; default
	// quote → quotes, trade → trades.
	Groups map[schemas.Kind]string
	// Disabled turns admission control off (benchmarks of the raw path).
	Disabled bool
	// JWT, when set, verifies JWT bearer tokens beside the API keys and
	// requires a key or a token on every data request.
	JWT *admit.Verifier
	// AuditInterval is the least time between two log lines of the denial
	// audit for one client and reason; default 10s.
	AuditInterval time.Duration

	log *slog.Logger // the server's, for the audit
}

// rejection reasons, counted in sluice_gateway_rejected_total.
const (
	rejUnauthorized = iota
	rejForbidden
	rejRateLimited
	rejNoWorkers
	rejConcurrency
	rejShed
	rejBackpressure
	numRejections
)

var rejectionNames = [numRejections]string{"unauthorized", "forbidden", "rate_limited", "no_workers", "concurrency", "shed", "backpressure"}

// groupAdmission is the admission state of one worker group.
type groupAdmission struct {
	load     *admit.Group
	limit    *admit.AIMD
	rejected [numRejections][4]*metrics.Counter
}

// admission holds the gateway's admission state.
type admission struct {
	opts    AdmissionOptions
	clients *admit.Clients
	groups  [3]*groupAdmission // by kind
	byName  map[string]*groupAdmission
	sub     *nats.Subscription
	onTick  []func(now time.Time) // run with the expiry pass, every 25 ms
	audit   *admit.Audit
	denials [admit.NumDenials]*metrics.Counter
	stop    chan struct{}
	closed  sync.Once
}

const priorityHeader = "Sluice-Priority"

func newAdmission(opts AdmissionOptions, subjects schemas.Subjects, set *metrics.Set) *admission {
	if opts.Groups == nil {
		opts.Groups = map[schemas.Kind]string{schemas.KindQuote: "quotes", schemas.KindTrade: "trades"}
	}
	a := &admission{opts: opts, byName: map[string]*groupAdmission{}, stop: make(chan struct{}),
		clients: admit.NewClients(admit.ClientOptions{Keys: opts.Keys, AddressRate: opts.AddressRate, AddressBurst: opts.AddressBurst, JWT: opts.JWT}),
		audit:   admit.NewAudit(admit.AuditOptions{Logger: opts.log, Interval: opts.AuditInterval})}
	for d := range admit.NumDenials {
		a.denials[d] = set.NewCounter(fmt.Sprintf(`sluice_gateway_denials_total{reason=%q}`, d))
	}
	a.onTick = append(a.onTick, a.audit.Flush)
	for _, k := range schemas.Kinds {
		name := opts.Groups[k]
		ga, ok := a.byName[name]
		if !ok {
			shed := opts.Shed
			if d, ok := opts.QueueDelays[k]; ok {
				shed.MaxQueueDelay = d
			}
			ga = &groupAdmission{load: admit.NewGroup(name, shed), limit: admit.NewAIMD(opts.Concurrency)}
			for r, rn := range rejectionNames {
				for _, p := range admit.Priorities {
					ga.rejected[r][p] = set.NewCounter(fmt.Sprintf(`sluice_gateway_rejected_total{reason=%q,priority=%q,group=%q}`, rn, p, name))
				}
			}
			set.NewGauge(fmt.Sprintf(`sluice_gateway_group_depth{group=%q}`, name), func() float64 { return float64(ga.load.Depth()) })
			set.NewGauge(fmt.Sprintf(`sluice_gateway_group_depth_part{group=%q,part="sent"}`, name), func() float64 { return float64(ga.load.Sent()) })
			set.NewGauge(fmt.Sprintf(`sluice_gateway_group_depth_part{group=%q,part="others"}`, name), func() float64 { return float64(ga.load.Others()) })
			set.NewGauge(fmt.Sprintf(`sluice_gateway_group_depth_part{group=%q,part="held"}`, name), func() float64 { return float64(ga.load.Held()) })
			set.NewGauge(fmt.Sprintf(`sluice_gateway_group_depth_bound{group=%q}`, name), func() float64 { return float64(ga.load.Bound()) })
			set.NewGauge(fmt.Sprintf(`sluice_gateway_group_workers{group=%q}`, name), func() float64 { return float64(ga.load.Live()) })
			set.NewGauge(fmt.Sprintf(`sluice_gateway_group_drain_rate{group=%q}`, name), func() float64 { return ga.load.Rate() })
			set.NewGauge(fmt.Sprintf(`sluice_gateway_concurrency_limit{group=%q}`, name), func() float64 { return float64(ga.limit.Limit()) })
			set.NewGauge(fmt.Sprintf(`sluice_gateway_concurrency_in_use{group=%q}`, name), func() float64 { return float64(ga.limit.InFlight()) })
			a.byName[name] = ga
		}
		a.groups[k] = ga
	}
	return a
}

// start subscribes to the workers' load reports and expires silent workers.
func (a *admission) start(nc *nats.Conn, subjects schemas.Subjects) error {
	sub, err := nc.Subscribe(subjects.LoadAll(), func(m *nats.Msg) {
		var lr schemas.LoadReport
		r := schemas.NewReader(m.Data)
		if lr.DecodeMsgpack(&r) != nil {
			return
		}
		if ga := a.byName[lr.Group]; ga != nil {
			ga.load.Observe(&lr, time.Now())
		}
	})
	if err != nil {
		return fmt.Errorf("subscribing to load reports: %w", err)
	}
	a.sub = sub
	go func() {
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-a.stop:
				return
			case now := <-t.C:
				for _, ga := range a.byName {
					ga.load.Expire(now)
				}
				for _, f := range a.onTick {
					f(now)
				}
			}
		}
	}()
	return nil
}

func (a *admission) close() {
	a.closed.Do(func() {
		close(a.stop)
		if a.sub != nil {
			_ = a.sub.Unsubscribe()
		}
	})
}

// GroupWorkers returns the live workers of each group, for /readyz.
func (s *Server) GroupWorkers() map[string]int64 {
	out := make(map[string]int64, len(s.adm.byName))
	for name, ga := range s.adm.byName {
		out[name] = ga.load.Live()
	}
	return out
}

// admitRequest runs the admission checks in order, before the body is
// read: identity (401/403), the client's token bucket (429), live workers
// for the group (503 at once), the group's concurrency limit (503) and
// queue-depth shedding by priority (503). It answers rejected requests
// itself and returns nil; an admitted request gets its group, holding a
// concurrency slot that the caller releases. now is the request's arrival
// (the caller's clock read, not one more).
func (s *Server) admitRequest(w http.ResponseWriter, r *http.Request, kind schemas.Kind, st *reqState, now time.Time) *groupAdmission {
	ga := s.adm.groups[kind]
	if s.adm.opts.Disabled {
		return ga
	}
	var cl *admit.Client
	if s.adm.clients.KeysRequired() {
		var why admit.Denial
		var desc string
		cl, why, desc = s.adm.clients.Authenticate(r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), now)
		if cl == nil {
			ga.rejected[rejUnauthorized][admit.Normal].Inc()
			s.adm.deny(why, remoteHost(r.RemoteAddr), desc, now)
			s.unauthorized(w, st, why, desc)
			return nil
		}
	} else {
		cl = s.adm.clients.ByAddress(r.RemoteAddr)
	}
	prio, ok := admit.Effective(r.Header.Get(priorityHeader), cl.MaxPriority)
	if !ok {
		s.fail(w, st, &problem{Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("%s must be low, normal, high or critical", priorityHeader)})
		return nil
	}
	if !cl.Allows(kind) {
		ga.rejected[rejForbidden][prio].Inc()
		s.adm.deny(admit.DenyForbidden, cl.Name, kind.String(), now)
		s.fail(w, st, &problem{Status: http.StatusForbidden,
			Detail: fmt.Sprintf("client %q may not publish %s events", cl.Name, kind)})
		return nil
	}
	if ok, retry := cl.Take(now); !ok {
		ga.rejected[rejRateLimited][prio].Inc()
		s.adm.deny(admit.DenyRateLimited, cl.Name, kind.String(), now)
		rate, burst := cl.Limits()
		h := w.Header()
		h.Set("RateLimit-Policy", fmt.Sprintf(`"client";q=%d;w=%d`, burst, max(int(float64(burst)/rate), 1)))
		h.Set("RateLimit", fmt.Sprintf(`"client";r=0;t=%d`, retry))
		s.fail(w, st, &problem{Status: http.StatusTooManyRequests, RetryAfter: retry,
			Detail: fmt.Sprintf("client %q is over its rate of %g requests/s (burst %d); slow down or ask for a higher rate", cl.Name, rate, burst)})
		return nil
	}
	g := ga.load
	// Durable: a group without live workers keeps accepting while its
	// backlog is under its bound (the events wait in the stream); the
	// depth check below refuses past it.
	if g.Live() == 0 && !g.Durable() {
		ga.rejected[rejNoWorkers][prio].Inc()
		s.fail(w, st, &problem{Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Detail: fmt.Sprintf("no live workers in group %q for %s events: start one with 'sluice worker --group %s'", g.Name(), kind, g.Name())})
		return nil
	}
	if d := s.batchers[kind].dur; d != nil && d.full() {
		ga.rejected[rejBackpressure][prio].Inc()
		s.fail(w, st, &problem{Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Detail: fmt.Sprintf("%d batches wait for JetStream to store them (flag --durable-max-pending): the stream is not keeping up; retry later", d.max)})
		return nil
	}
	if !ga.limit.Acquire() {
		ga.rejected[rejConcurrency][prio].Inc()
		s.fail(w, st, &problem{Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Detail: fmt.Sprintf("group %q is at its adaptive concurrency limit of %d requests (latency rose); retry later", g.Name(), ga.limit.Limit())})
		return nil
	}
	if d := g.Depth(); g.Shed(prio, d) {
		ga.limit.Release(0, false)
		ga.rejected[rejShed][prio].Inc()
		// The detail is built in the request's scratch space, without
		// fmt: at 10× a group's capacity nine requests in ten end here.
		st.enc = appendShedDetail(st.enc[:0], g, kind, prio, d)
		s.fail(w, st, &problem{Status: http.StatusServiceUnavailable, RetryAfter: g.RetryAfter(prio, d),
			Detail: unsafe.String(unsafe.SliceData(st.enc), len(st.enc))})
		return nil
	}
	return ga
}

// deny counts a denial and hands it to the audit.
func (a *admission) deny(why admit.Denial, client, detail string, now time.Time) {
	a.denials[why].Inc()
	a.audit.Deny(why, client, detail, now)
}

// unauthorized answers 401 with an RFC 6750 challenge; desc never quotes
// the credential.
func (s *Server) unauthorized(w http.ResponseWriter, st *reqState, why admit.Denial, desc string) {
	detail := "a valid API key is required: Authorization: Bearer <key> or X-API-Key: <key>"
	if s.adm.opts.JWT != nil {
		detail = "a valid API key or token is required: Authorization: Bearer <key or JWT> or X-API-Key: <key>"
	}
	challenge := `Bearer realm="sluice"`
	if why != admit.DenyMissing {
		challenge += `, error="invalid_token", error_description="` + desc + `"`
		detail += ": " + desc
	}
	w.Header().Set("WWW-Authenticate", challenge)
	s.fail(w, st, &problem{Status: http.StatusUnauthorized, Detail: detail})
}

// remoteHost is the host of an "ip:port" remote address, without copying.
func remoteHost(remote string) string {
	if i := strings.LastIndexByte(remote, ':'); i > 0 {
		return strings.Trim(remote[:i], "[]")
	}
	return remote
}

// appendShedDetail appends why a group sheds, naming where its depth is,
// so that the answer blames only what caused it: the workers (events sent
// and not yet processed, by this gateway or others) or this gateway's
// batcher (events not yet handed to NATS).
func appendShedDetail(b []byte, g *admit.Group, kind schemas.Kind, prio admit.Priority, d int64) []byte {
	sent, others, held := g.Sent(), g.Others(), g.Held()
	fix := "add workers to the group, send fewer events, or raise --shed-max-queue-delay"
	if held > sent+others {
		fix = "NATS is not taking this gateway's batches fast enough: check the NATS connection (sluice_gateway_nats_publish_errors_total) or send fewer events"
	}
	sentWhat, othersWhat := " sent by this gateway and not yet processed, ", " from other gateways, "
	if g.Durable() {
		sentWhat, othersWhat = " sent by this gateway and not yet stored, ", " stored in the stream and not yet processed, "
		if g.Live() == 0 {
			fix = "the group has no live workers: start one with 'sluice worker --group " + g.Name() + "'"
		}
	}
	b = append(b, "group "...)
	b = strconv.AppendQuote(b, g.Name())
	b = append(b, " is shedding "...)
	b = append(b, prio.String()...)
	b = append(b, " priority for "...)
	b = append(b, kind.String()...)
	b = append(b, " events: "...)
	b = strconv.AppendInt(b, d, 10)
	b = append(b, " events queued of a bound of "...)
	b = strconv.AppendInt(b, g.Bound(), 10)
	b = append(b, " ("...)
	b = strconv.AppendInt(b, sent, 10)
	b = append(b, sentWhat...)
	b = strconv.AppendInt(b, others, 10)
	b = append(b, othersWhat...)
	b = strconv.AppendInt(b, held, 10)
	b = append(b, " not yet handed to NATS; drain rate "...)
	b = strconv.AppendFloat(b, g.Rate(), 'f', 0, 64)
	b = append(b, "/s). Possible solutions: "...)
	return append(b, fix...)
}

// noResponders handles the NATS server's no-responders notice for a batch:
// nobody subscribes to the group's ingest subject, so the group is dead
// until its workers report again.
func (s *Server) noResponders(subject string) {
	i := strings.LastIndexByte(subject, '.')
	if k, ok := schemas.ParseKind(subject[i+1:]); ok {
		s.adm.groups[k].load.NoResponders()
	}
}
