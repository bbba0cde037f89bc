package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/gateway/admit"
	"github.com/sluice-dev/sluice/schemas"
)

// TestShedDetailText checks the 503's detail, built without fmt, against
// the sentence it has always been.
func TestShedDetailText(t *testing.T) {
	g := admit.NewGroup("quotes", admit.ShedOptions{})
	g.Observe(&schemas.LoadReport{Worker: "w1", Group: "quotes", PendingEvents: 5000, Rate: 1234.5, MaxRate: 2000,
		IntervalMS: 100}, time.Now())
	g.Local(7)
	for _, prio := range admit.Priorities {
		d := g.Depth()
		got := string(appendShedDetail([]byte("junk"), g, schemas.KindTrade, prio, d)[4:])
		want := fmt.Sprintf("group %q is shedding %s priority for %s events: %d events queued of a bound of %d (%d sent by this gateway and not yet processed, %d from other gateways, %d not yet handed to NATS; drain rate %.0f/s). Possible solutions: %s",
			g.Name(), prio, schemas.KindTrade, d, g.Bound(), g.Sent(), g.Others(), g.Held(), g.Rate(),
			"add workers to the group, send fewer events, or raise --shed-max-queue-delay")
		if got != want {
			t.Errorf("priority %s:\n got %s\nwant %s", prio, got, want)
		}
	}
}
