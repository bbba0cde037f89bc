package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/ops"
)

// A gateway on an embedded NATS server: one quote in, 202 out, one batch
// frame on sluice.ingest.quote.
func Example() {
	ns, err := ops.RunNATS(ops.NATSOptions{Port: server.RANDOM_PORT})
	if err != nil {
		panic(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	frames, _ := nc.SubscribeSync("sluice.ingest.quote") // where a worker group would listen
	_ = nc.Flush()

	gw, err := gateway.New(gateway.Options{
		Conn:      nc,
		Listen:    "127.0.0.1:0",
		Admission: gateway.AdmissionOptions{Disabled: true}, // no workers report load here
	})
	if err != nil {
		panic(err)
	}
	if err := gw.Start(); err != nil {
		panic(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	}()

	resp, err := http.Post("http://"+gw.Addr()+"/v1/events/quote", "application/json",
		strings.NewReader(`{"symbol":"AAPL","bid":189.5,"ask":189.52,"bid_size":100,"ask_size":200}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)

	msg, err := frames.NextMsg(5 * time.Second)
	if err != nil {
		panic(err)
	}
	fmt.Println(msg.Header.Get("Sluice-Frame"), msg.Header.Get("Sluice-Count"))
	// Output:
	// 202 Accepted
	// batch.v1 1
}
