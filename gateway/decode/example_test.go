package decode_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/sluice-dev/sluice/gateway/decode"
	"github.com/sluice-dev/sluice/schemas"
)

func ExampleBody() {
	h := http.Header{"Content-Type": {"application/x-ndjson"}}
	body := []byte(`{"symbol":"AAPL","bid":189.5,"ask":189.52,"bid_size":100,"ask_size":200}
{"symbol":"MSFT","bid":410.1,"ask":410.2,"bid_size":300,"ask_size":100}
`)
	events, single, err := decode.Body(schemas.KindQuote, h, body, 100, nil)
	fmt.Println(len(events), single, err == nil, events[1].Quote.Symbol, events[1].Quote.Ask)

	_, _, err = decode.Body(schemas.KindQuote, h, []byte(`{"symbol":"`+strings.Repeat("A", 40)+`"}`), 100, nil)
	fmt.Println(err.Status, err.Errors[0].Field, err.Errors[0].Code)
	// Output:
	// 2 false true MSFT 410.2
	// 422 symbol invalid_field
}
