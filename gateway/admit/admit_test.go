package admit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schemas"
)

func TestEffectivePriority(t *testing.T) {
	f := func(asked string, max Priority, want Priority, wantOK bool) {
		t.Helper()
		got, ok := Effective(asked, max)
		if got != want || ok != wantOK {
			t.Errorf("Effective(%q, %s) = %s, %v; want %s, %v", asked, max, got, ok, want, wantOK)
		}
	}
	f("", Critical, Normal, true)
	f("low", Critical, Low, true)
	f("CRITICAL", Critical, Critical, true)
	f("critical", High, High, true) // never above the key's maximum
	f("high", Normal, Normal, true)
	f("low", Normal, Low, true) // lowering is always allowed
	f("urgent", Critical, Normal, false)
}

func TestTokenBucket(t *testing.T) {
	cl := &Client{}
	cl.setLimit(10, 5)
	now := time.Unix(1000, 0)
	for i := 0; i < 5; i++ {
		if ok, _ := cl.Take(now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, retry := cl.Take(now)
	if ok || retry != 1 {
		t.Fatalf("6th request: ok %v retry %d; want refused, Retry-After 1", ok, retry)
	}
	if ok, _ := cl.Take(now.Add(100 * time.Millisecond)); !ok {
		t.Fatal("a token should be back after 1/rate")
	}
	slow := &Client{}
	slow.setLimit(0.1, 1)
	slow.Take(now)
	if _, retry := slow.Take(now); retry != 10 {
		t.Fatalf("Retry-After at 0.1/s = %d, want 10", retry)
	}
	if ok, _ := (&Client{}).Take(now); !ok {
		t.Fatal("a client without limits is always admitted")
	}
}

func TestAIMDIncreaseAndDecrease(t *testing.T) {
	a := NewAIMD(AIMDOptions{Min: 4, Max: 100, Initial: 10, Slack: time.Millisecond, Tolerance: 2})
	// Additive increase: about +1 per limit's worth of fast completions.
	for i := 0; i < 10; i++ {
		if !a.Acquire() {
			t.Fatal("acquire below the limit failed")
		}
		a.Release(100*time.Microsecond, false)
	}
	if l := a.Limit(); l != 10 && l != 11 {
		t.Fatalf("after 10 fast completions limit %d, want 10 or 11", l)
	}
	for i := 0; i < 200; i++ {
		a.Acquire()
		a.Release(100*time.Microsecond, false)
	}
	if l := a.Limit(); l < 20 {
		t.Fatalf("limit %d did not grow additively", l)
	}
	// Multiplicative decrease on a slow completion, at most once per window.
	before := a.Limit()
	a.Acquire()
	a.Release(50*time.Millisecond, false)
	after := a.Limit()
	if after != int(float64(before)*0.9) && after != int(float64(before)*0.9)+1 {
		t.Fatalf("limit %d → %d, want ×0.9", before, after)
	}
	a.Acquire()
	a.Release(0, true) // timeout right after: same window, no second cut
	if a.Limit() != after {
		t.Fatalf("second decrease within the window: %d → %d", after, a.Limit())
	}
	// Floor at Min.
	for i := 0; i < 100; i++ {
		a.mu.Lock()
		a.lastDrop = time.Time{}
		a.mu.Unlock()
		a.Acquire()
		a.Release(0, true)
	}
	if a.Limit() != 4 {
		t.Fatalf("limit %d, want the minimum 4", a.Limit())
	}
	// The limit is enforced.
	n := 0
	for a.Acquire() {
		n++
	}
	if n != 4 || a.InFlight() != 4 {
		t.Fatalf("admitted %d (in flight %d) at limit 4", n, a.InFlight())
	}
}

func report(worker string, pending int64, rate float64) *schemas.LoadReport {
	return &schemas.LoadReport{Worker: worker, Group: "quotes", PendingEvents: pending, Rate: rate, IntervalMS: 100}
}

func TestShedThresholdsWithHysteresis(t *testing.T) {
	g := NewGroup("quotes", ShedOptions{MinDepth: 1000, MaxDepth: 1000})
	now := time.Now()
	g.Observe(report("w1", 0, 0), now)
	if g.Bound() != 1000 {
		t.Fatalf("bound %d", g.Bound())
	}
	cases := []struct {
		depth int64
		shed  [4]bool // low normal high critical
	}{
		{100, [4]bool{false, false, false, false}},
		{250, [4]bool{true, false, false, false}},  // low starts at 25%
		{210, [4]bool{true, false, false, false}},  // hysteresis: still shedding above 20% below
		{199, [4]bool{false, false, false, false}}, // stops below 25%×0.8
		{500, [4]bool{true, true, false, false}},   // normal at 50%
		{760, [4]bool{true, true, true, false}},    // high at 75%
		{1000, [4]bool{true, true, true, true}},    // critical only at the bound
		{799, [4]bool{true, true, true, false}},    // critical off below 80%; high stays on above 60%
		{450, [4]bool{true, true, false, false}},   // normal stays on above 40%
		{399, [4]bool{true, false, false, false}},  // normal off
	}
	for _, c := range cases {
		for p := range Priorities {
			if got := g.Shed(Priority(p), c.depth); got != c.shed[p] {
				t.Errorf("depth %d priority %s: shed %v, want %v", c.depth, Priority(p), got, c.shed[p])
			}
		}
	}
}

func TestGroupLivenessAndDepth(t *testing.T) {
	g := NewGroup("quotes", ShedOptions{})
	now := time.Now()
	if g.Live() != 0 {
		t.Fatal("a group without reports has no live workers")
	}
	g.Observe(report("w1", 300, 1000), now)
	g.Observe(report("w2", 200, 3000), now)
	if g.Live() != 2 || g.Rate() != 4000 {
		t.Fatalf("live %d rate %v", g.Live(), g.Rate())
	}
	if d := g.Depth(); d != 500 {
		t.Fatalf("depth %d, want 500", d)
	}
	g.Local(50)
	if d := g.Depth(); d != 550 {
		t.Fatalf("depth %d with 50 held here, want 550", d)
	}
	g.NoResponders()
	if g.Live() != 0 {
		t.Fatal("no responders must make the group dead at once")
	}
	g.Observe(report("w1", 0, 1000), time.Now())
	if g.Live() != 0 {
		t.Fatal("a report in flight when the workers died must not revive the group")
	}
	g.Observe(report("w1", 0, 1000), time.Now().Add(reviveAfter+time.Millisecond))
	if g.Live() != 2 {
		t.Fatalf("a later report revives the group: live %d", g.Live())
	}
	g.Expire(now.Add(900 * time.Millisecond))
	if g.Live() != 2 {
		t.Fatalf("workers silent for less than a second are kept: live %d", g.Live())
	}
	g.Expire(now.Add(1100 * time.Millisecond))
	if g.Live() != 0 {
		t.Fatalf("workers silent for a second are gone: live %d", g.Live())
	}
	st := report("w3", 0, 0)
	g.Observe(st, now)
	st.Stopping = true
	g.Observe(st, now)
	if g.Live() != 0 {
		t.Fatal("a stopping worker leaves at once")
	}
}

func TestRetryAfter(t *testing.T) {
	g := NewGroup("quotes", ShedOptions{MinDepth: 1000, MaxDepth: 1000})
	now := time.Now()
	g.Observe(report("w1", 0, 100), now) // drains 100 events/s
	f := func(p Priority, depth int64, want int) {
		t.Helper()
		if got := g.RetryAfter(p, depth); got != want {
			t.Errorf("RetryAfter(%s, %d) = %d, want %d", p, depth, got, want)
		}
	}
	f(Low, 200, 1)     // below the target already
	f(Low, 700, 5)     // (700 − 250×0.8) / 100 = 5
	f(Normal, 900, 5)  // (900 − 400) / 100
	f(Low, 100000, 60) // capped
	g.Observe(report("w1", 0, 0), now)
	// Idle workers report rate 0: a quarter of the (slowly decaying) peak
	// rate stands in, 99.5/4 events/s: (700 − 200) / 24.875 → 21 s.
	f(Low, 700, 21)
}

func TestKeysFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "keys.json")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"keys":[{"client":"feed-a","sha256":"` + HashKey("secret-a") + `","rate":100,"burst":10,"max_priority":"high","types":["quote"]}]}`
	kf, err := LoadKeys(write(good))
	if err != nil {
		t.Fatal(err)
	}
	cs := NewClients(ClientOptions{Keys: kf})
	cl := cs.ByKey("secret-a")
	if cl == nil || cl.Name != "feed-a" || cl.MaxPriority != High || !cl.Allows(schemas.KindQuote) || cl.Allows(schemas.KindTrade) {
		t.Fatalf("client %+v", cl)
	}
	if cs.ByKey("wrong") != nil || cs.ByKey("") != nil {
		t.Fatal("unknown keys must not match")
	}
	bad := map[string]string{
		`{"keys":[]}`: "no keys",
		`{"keys":[{"client":"a","sha256":"abc"}]}`:                                                                 "64 hex digits",
		`{"keys":[{"sha256":"` + HashKey("x") + `"}]}`:                                                             "client is required",
		`{"keys":[{"client":"a","sha256":"` + HashKey("x") + `","max_priority":"urgent"}]}`:                        "max_priority",
		`{"keys":[{"client":"a","sha256":"` + HashKey("x") + `","types":["bond"]}]}`:                               "unknown type",
		`{"keys":[{"client":"a","sha256":"` + HashKey("x") + `","rate":-1}]}`:                                      "negative",
		`{"keys":[{"client":"a","sha256":"` + HashKey("x") + `"},{"client":"b","sha256":"` + HashKey("x") + `"}]}`: "twice",
		`{"keys":[{"client":"a","key":"plaintext"}]}`:                                                              "unknown field",
		`not json`: "invalid character",
	}
	for in, want := range bad {
		_, err := LoadKeys(write(in))
		if !errors.Is(err, ErrKeysFile) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", in, err, want)
		}
	}
	if _, err := LoadKeys(filepath.Join(dir, "missing.json")); !errors.Is(err, ErrKeysFile) {
		t.Errorf("missing file: %v", err)
	}
}

func TestAddressClients(t *testing.T) {
	open := NewClients(ClientOptions{})
	if c := open.ByAddress("10.0.0.1:5000"); c.limiter != nil || c.MaxPriority != Critical {
		t.Fatalf("without per-address limits every address is unlimited: %+v", c)
	}
	limited := NewClients(ClientOptions{AddressRate: 1, AddressBurst: 1, MaxAddresses: 2})
	a := limited.ByAddress("127.0.0.1:1")
	if a != limited.ByAddress("127.0.0.1:2") {
		t.Fatal("the port is not part of the identity")
	}
	limited.ByAddress("127.0.0.2:1")
	limited.ByAddress("127.0.0.3:1")
	if len(limited.addrs) > 2 {
		t.Fatalf("%d address buckets kept, bound 2", len(limited.addrs))
	}
	if KeyFromHeaders("Bearer abc", "") != "abc" || KeyFromHeaders("", "xyz") != "xyz" || KeyFromHeaders("Basic x", "") != "" {
		t.Fatal("KeyFromHeaders")
	}
}

// TestBoundFromWorkerCapacity: an idle group whose workers estimate their
// busy drain rate gets a bound from that rate, not from its idle rate, so a
// first burst is not shed against an idle rate.
func TestBoundFromWorkerCapacity(t *testing.T) {
	g := NewGroup("quotes", ShedOptions{MaxQueueDelay: 250 * time.Millisecond})
	lr := report("w1", 0, 10)
	lr.MaxRate = 100_000
	g.Observe(lr, time.Now())
	if b := g.Bound(); b != 25_000 {
		t.Fatalf("bound %d, want 100000/s × 250ms = 25000", b)
	}
	if g.Shed(Normal, 1100) {
		t.Fatal("1100 events against a capacity of 100000/s must not be shed")
	}
}

// TestBoundIgnoresRateNoise: a worker's rate over one report interval
// swings with whole batches finishing in it; the bound follows its busy
// rate (its capacity), so admitted events queue no longer than
// MaxQueueDelay. Measured at 10× a slowed group's capacity: reports of
// 900-1,620 events/s from a 1,000 events/s worker made bounds of up to 405
// events and a queue delay p99 of 250-412 ms against the 250 ms promised.
func TestBoundIgnoresRateNoise(t *testing.T) {
	g := NewGroup("quotes", ShedOptions{})
	now := time.Now()
	for _, rate := range []float64{900, 1620, 1000, 1540} {
		lr := report("w1", 300, rate)
		lr.MaxRate = 1000
		g.Observe(lr, now)
		if b := g.Bound(); b != 250 {
			t.Fatalf("after a report of %v events/s: bound %d, want 1000/s × 250ms = 250", rate, b)
		}
	}
	// A worker that reports no busy rate is judged by its rate.
	old := NewGroup("quotes", ShedOptions{})
	old.Observe(report("w1", 300, 2000), now)
	if b := old.Bound(); b != 500 {
		t.Fatalf("bound %d without a busy rate, want 2000/s × 250ms = 500", b)
	}
}

// TestBoundOfSlowAndColdGroups: a slow group's bound follows its rate down
// to the small floor, so --shed-max-queue-delay holds for it (with the old
// floor of 2048 a 1,000 events/s group queued two seconds); a group that
// has reported no rate yet gets the larger cold bound, so a first burst is
// not judged against a rate nobody measured.
func TestBoundOfSlowAndColdGroups(t *testing.T) {
	g := NewGroup("quotes", ShedOptions{})
	g.Observe(report("w1", 0, 0), time.Now()) // live, no rate yet
	if b := g.Bound(); b != DefaultColdDepth {
		t.Fatalf("cold bound %d, want %d", b, DefaultColdDepth)
	}
	lr := report("w1", 0, 10)
	lr.MaxRate = 1000
	g.Observe(lr, time.Now())
	if b := g.Bound(); b != 250 {
		t.Fatalf("bound %d, want 1000/s × 250ms = 250", b)
	}
	lr.MaxRate = 10
	slow := NewGroup("trades", ShedOptions{})
	slow.Observe(lr, time.Now())
	if b := slow.Bound(); b != DefaultMinDepth {
		t.Fatalf("bound %d, want the floor %d", b, DefaultMinDepth)
	}
}

// TestDepthExactForOwnBatches: the gateway's own outstanding events count
// exactly, and the workers' reports add only what other gateways sent, so
// neither a stale report of this gateway's drained events nor the time
// since the last report makes phantom depth (it used to add everything sent
// since the report, shedding a burst the workers were keeping up with).
func TestDepthExactForOwnBatches(t *testing.T) {
	g := NewGroup("quotes", ShedOptions{})
	var mine atomic.Int64
	g.AddOrigin("_INBOX.me.quote", mine.Load)
	now := time.Now()
	lr := report("w1", 900, 1000)
	lr.Origins = []schemas.OriginLoad{{Reply: "_INBOX.me.quote", Events: 700}, {Reply: "_INBOX.other.quote", Events: 200}}
	g.Observe(lr, now)
	mine.Store(700)
	if d := g.Depth(); d != 900 {
		t.Fatalf("depth %d, want 700 of mine + 200 of the other gateway", d)
	}
	mine.Store(0) // done frames came back: the report is stale for my share
	if d := g.Depth(); d != 200 {
		t.Fatalf("depth %d after my batches were done, want the other gateway's 200", d)
	}
	g.Expire(now.Add(10 * time.Millisecond))
	if d, o := g.Depth(), g.Others(); d != 200 || o != 200 {
		t.Fatalf("depth %d others %d after an expiry pass, want 200", d, o)
	}
}
