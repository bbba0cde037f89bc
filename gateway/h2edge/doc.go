// Package h2edge is sluice's own HTTP/2 server (the "fast edge", issue
// #16): the gateway's http.Server accepts connections, sniffs the h2c
// preface or negotiates h2 by ALPN, and hands each HTTP/2 connection to
// [Server.ServeConn] (wired by [Server.ConfigureServer]); HTTP/1.1 stays
// on net/http.
//
// # Design
//
// One goroutine per connection reads frames with golang.org/x/net/http2's
// Framer and decodes header blocks with its hpack decoder (the codecs are
// x/net's, the connection state machine is this package's). Header blocks
// go through headers.go's blockReader rather than the Framer's
// ReadMetaHeaders: the same checks, bounds and errors (ported from its
// readMetaFrame), into a MetaHeadersFrame, a field slice and an emit
// function kept per connection instead of allocated per request. One mutex per
// connection guards its state (streams, windows, settings, the hpack
// encoder) and the framer's writes, which go to a buffered writer: the
// loop flushes once per read burst (when its read buffer is empty), and a
// handler's write flushes only when no burst is under way, so the answers
// of a burst leave in one write. Every request runs its http.Handler on a
// goroutine of its own (the adapter); its ResponseWriter holds up to 16 KiB
// and sends HEADERS and DATA under the connection's lock when it is
// flushed, full, or the handler returns (a short answer: HEADERS with
// content-length and one DATA frame with END_STREAM). DATA waits for the
// peer's stream and connection windows on a per-stream sync.Cond. Request
// bodies are collected by the loop into the stream's buffer; the handler's
// reads give the bytes back with WINDOW_UPDATE once half a window is owed.
//
// # In the gateway
//
// `sluice gateway|dev --http2-server fast` (env SLUICE_HTTP2_SERVER), the
// default; `std` keeps net/http's HTTP/2 server:
// gateway/server.go builds its http.Server as before and calls
// [Server.ConfigureServer], which sets the server's TLSNextProto entries
// for "h2" (TLS, after ALPN) and "unencrypted_http2" (h2c, after net/http
// read the preface on the shared port). The connection handed over is
// gateway/netconn's shaped connection (read buffer, write coalescer, and on
// h2c its frame watch, which still closes PING/SETTINGS floods), so
// netconn needed no change. net/http counts the connection active until
// ServeConn returns, so http.Server.Shutdown (which calls StartShutdown)
// waits for its streams. Protocol errors are reported to Options.OnError
// under net/http's reason names (conn_PROTOCOL_ERROR_data_on_idle,
// frame_ping_has_stream, ...), so sluice_gateway_http2_errors_total reads
// the same with both servers. The gateway's read deadlines (body timeout,
// the drain of a refused body) work through
// http.ResponseController.SetReadDeadline.
//
// A handler that answered and returned while its client was still sending
// the body leaves the stream open until the client's next DATA frame on it,
// which is answered RST_STREAM NO_ERROR (RFC 9113, 8.1), or until its slot
// is wanted for a new stream or the connection shuts down; a client that
// stops sending and ends the stream (curl after an error answer) gets no
// reset, which curl 7.88 would report as a failure.
//
// # Conformance
//
// h2spec 2.2.1 passes 145 of 145 over TLS and over h2c with prior knowledge
// when the connection comes straight to ServeConn (h2spec_test.go), and
// through the gateway (gateway/fastedge_test.go) 145 of 145 over TLS and
// 144 of 145 over h2c: on the shared port "invalid connection preface" is
// answered as HTTP/1.1 by net/http, by design. Covered: SETTINGS both ways (max
// concurrent streams, initial window, max frame size, header list size;
// repeated SETTINGS_INITIAL_WINDOW_SIZE values taken in order and applied
// to open streams), stream states and their errors, CONTINUATION with a
// bound (a header block whose frames carry more than 2×MaxHeaderListSize +
// 16 KiB ends the connection with ENHANCE_YOUR_CALM, which bounds floods of
// empty CONTINUATION frames the Framer alone would accept), PRIORITY
// ignored (self-dependency refused), PING answered under
// Options.ControlFrameLimit (shared with SETTINGS, as gateway/netconn
// counts them on h2c), RST_STREAM with early resets counted
// (Options.MaxEarlyResets a second, then GOAWAY ENHANCE_YOUR_CALM) and
// handlers of reset streams bounded at 4×MaxConcurrentStreams,
// content-length checked against DATA, connection-specific fields and te
// other than trailers refused, ReadHeaderTimeout for the preface and for
// any frame once begun, IdleTimeout, WriteTimeout per stream (movable by
// http.ResponseController.SetWriteDeadline), GOAWAY with the last stream id
// on shutdown (streams in flight finish, new ones are ignored).
//
// The adapter costs 30 allocations and 2.8 KB per request
// (BenchmarkAdapter: a POST with a 100-byte body answered 202 with 40
// bytes), a third of them in x/net's header decoding (MetaHeadersFrame,
// field strings), the rest the http.Request (two: net/http sets its
// context only by copying it), its header map and values, URL, context,
// one allocation for the stream, ResponseWriter and body together, the
// answer's header map and the handler's goroutine; answer buffers come
// from a pool.
//
// Not done: request trailers are checked and dropped (Request.Trailer stays
// nil), response trailers are not sent, 100-continue is not answered on its
// own (a 1xx the handler writes is sent), no server push, no priorities
// (answers are written in the order handlers write), and the loop does not
// send PINGs of its own.
//
// # Extended CONNECT
//
// With Options.EnableConnectProtocol (the gateway sets it: its subscriber
// streams take WebSockets over HTTP/2, RFC 8441) the first SETTINGS carry
// SETTINGS_ENABLE_CONNECT_PROTOCOL=1, and a CONNECT with :protocol,
// :scheme and :path goes to the handler as net/http's server presents
// one: Method "CONNECT", URL and RequestURI from :path, Header[":protocol"].
// Its stream is full duplex like any other here: the loop collects the
// client's DATA while the handler writes, and the handler's reads give the
// window back. A :protocol on another method, an empty one, or any
// :protocol when the option is off is a malformed request (stream error
// PROTOCOL_ERROR, RFC 8441, 4; RFC 9113, 8.1.1).
//
// # The fast path
//
// Options.Fast, a [FastHandler], claims requests by method and path on
// their HEADERS (the gateway claims POST /v1/events/{type} for a known
// type). A claimed stream gets no goroutine and no http.Request: the loop
// adds its fields to the exchange's own (pooled) header map and calls
// Begin, where the gateway runs admission and may refuse at once, before
// any DATA is read (a refusal costs no decode); Begin can also decline,
// and the request goes to the adapter as any other. The
// loop collects the DATA frames into a pooled buffer, giving the bytes
// back to the windows as they come (the buffer is bounded by Begin's
// maxBody: past it End gets ErrBodyTooLarge), and on END_STREAM calls End
// with the body, where the gateway decodes it and hands its events to the
// batcher. A body late past ReadTimeout ends with an error matching
// os.ErrDeadlineExceeded (one timer per connection, not per stream); a
// stream reset before End is aborted. The answer is given once, with
// [FastStream.Respond], from any goroutine (the gateway gives it from the
// batch's publish, or its JetStream ack, or for Prefer:
// return=representation from the reply inbox when the results are in, or
// from its deadline's timer): Respond copies it and queues it
// on the connection; the loop writes the queued answers before it flushes
// a burst, and an answer writer (one goroutine per connection, started
// with the first fast stream) writes those given while the loop waits for
// the socket, all of one wake-up in one write. An answer larger than the
// peer's windows waits for its WINDOW_UPDATE (with WriteTimeout then). A
// refusal that does not read the body can ask for the rest to be drained
// ([FastStream.DrainBody]) rather than the stream reset at its next DATA.
//
// What a fast request costs beyond the frames themselves is kept per
// connection, not per request: the loop reads the clock once per read
// burst ([FastStream.Arrived] is that reading: the gateway times the
// request and sets its body deadline from it), and the header block of an
// answer of the same status, fields and date as the connection's last one
// is copied from the last one (answerCache) when that one was all indexes
// into the HPACK tables and nothing was encoded since, instead of being
// looked up in the tables field by field; content-length follows it as a
// literal the dynamic table does not keep.
//
// BenchmarkEdgePublish (gateway) measures a single-quote POST through the
// whole gateway: 2 allocations and 165 B per request on the fast path
// (against 48 and 5.1 KB on std), one of them the benchmark client's.
// The server's: the HeadersFrame x/net's Framer allocates for each
// HEADERS frame it parses, and the request's share of its batch (a batch,
// its done channel and its waiter slice for every 32 or so requests).
// Header blocks are decoded into per-connection state (blockReader; x/net's
// ReadMetaHeaders took eleven allocations a request), and FastStreams are
// pooled: one goes back once it is out of the connection's streams and
// settled (its answer taken from the queue, or aborted), so that no
// late answer can reach a stream that reuses it (TestFastPathRecycle).
package h2edge
