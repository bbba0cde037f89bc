package naive

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/sluice-dev/sluice/gateway"
	"github.com/sluice-dev/sluice/gateway/netconn"
	"github.com/sluice-dev/sluice/schemas"
)

// GatewayOptions configure a [Gateway].
type GatewayOptions struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Prefix is the subject prefix; default "naive".
	Prefix string
	// Listen is the data listener address.
	Listen string
	// TLSCert and TLSKey, both set, serve TLS with h2 by ALPN.
	TLSCert, TLSKey string
	// RequestTimeout bounds nc.Request; default 2 s, as the gateway's.
	RequestTimeout time.Duration
	// Durable publishes each request as one JetStream message and answers
	// 202 once it is stored (see durable.go); Prefer: return=representation
	// is then 501.
	Durable bool
}

// DefaultPrefix is the naive pipeline's subject prefix.
const DefaultPrefix = "naive"

// maxBody is the gateway's body limit.
const maxBody = gateway.DefaultMaxBodyBytes

// Gateway is the naive HTTP edge.
type Gateway struct {
	opts     GatewayOptions
	source   string
	srv      *http.Server
	ln       net.Listener
	serveErr chan error
	once     sync.Once
	js       jetstream.JetStream // Durable
}

// NewGateway builds a Gateway; it does not listen yet.
func NewGateway(o GatewayOptions) (*Gateway, error) {
	if o.Conn == nil {
		return nil, errors.New("naive gateway: a NATS connection is required")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = gateway.DefaultRequestTimeout
	}
	host, _ := os.Hostname()
	g := &Gateway{opts: o, source: "naive/gateway/" + host, serveErr: make(chan error, 1)}
	if o.Durable {
		js, err := jetstream.New(o.Conn, jetstream.WithPublishAsyncMaxPending(16384),
			jetstream.WithPublishAsyncTimeout(durableTimeout))
		if err != nil {
			return nil, fmt.Errorf("naive gateway: %w", err)
		}
		g.js = js
	}
	var p http.Protocols
	p.SetHTTP1(true)
	if o.TLSCert != "" {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events/{type}", g.handleEvents)
	g.srv = &http.Server{Handler: mux, Protocols: &p, ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout: 2 * time.Minute, HTTP2: &http.HTTP2Config{MaxConcurrentStreams: gateway.DefaultMaxConcurrentStreams},
		ErrorLog: log.New(io.Discard, "", 0)}
	return g, nil
}

// Start listens and serves in the background.
func (g *Gateway) Start() error {
	// The same listener as the gateway, without its read buffer and write
	// coalescing: the naive gateway is what a conventional service does.
	ln, err := netconn.Listen(g.opts.Listen, netconn.Options{}, g.opts.TLSCert, g.opts.TLSKey)
	if err != nil {
		return fmt.Errorf("naive gateway: %w", err)
	}
	g.ln = ln
	go func() {
		err := g.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		g.serveErr <- err
	}()
	return nil
}

// Addr returns the listener's address once started.
func (g *Gateway) Addr() string {
	if g.ln == nil {
		return ""
	}
	return g.ln.Addr().String()
}

// Shutdown stops accepting, waits for requests in flight up to ctx, and
// flushes NATS; it also returns the error that ended serving early, if one
// did.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var err error
	g.once.Do(func() {
		err = g.srv.Shutdown(ctx)
		if g.ln != nil {
			err = errors.Join(err, <-g.serveErr)
		}
		err = errors.Join(err, g.opts.Conn.FlushWithContext(ctx))
	})
	return err
}

func (g *Gateway) handleEvents(w http.ResponseWriter, r *http.Request) {
	kind, ok := schemas.ParseKind(r.PathValue("type"))
	if !ok {
		writeJSON(w, http.StatusNotFound, Problem{Status: 404, Title: "Not Found", Detail: "unknown event type"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, Problem{Status: 413, Title: "Request Entity Too Large", Detail: err.Error()})
		return
	}
	payloads, single, err := decodePayloads(r.Header.Get("Content-Type"), body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, Problem{Status: 400, Title: "Bad Request", Detail: err.Error()})
		return
	}
	envs := g.envelopes(kind, payloads)
	data, err := json.Marshal(envs)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, Problem{Status: 500, Title: "Internal Server Error", Detail: err.Error()})
		return
	}
	subject := g.opts.Prefix + ".ingest." + kind.String()
	if r.Header.Get("Prefer") == "return=representation" {
		if g.js != nil {
			writeJSON(w, http.StatusNotImplemented, Problem{Status: 501, Title: "Not Implemented", Detail: "the naive durable gateway does not wait for results"})
			return
		}
		g.request(w, subject, data, single)
		return
	}
	if g.js != nil {
		g.publishDurable(w, r, subject, data, envs)
		return
	}
	if err := g.opts.Conn.Publish(subject, data); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, Problem{Status: 503, Title: "Service Unavailable", Detail: err.Error()})
		return
	}
	ids := make([]string, len(envs))
	for i := range envs {
		ids[i] = envs[i].ID
	}
	writeJSON(w, http.StatusAccepted, Accepted{Accepted: len(envs), IDs: ids})
}

// envelopes wraps each payload in a CloudEvent.
func (g *Gateway) envelopes(kind schemas.Kind, payloads []Payload) []Envelope {
	now := time.Now().UTC()
	envs := make([]Envelope, len(payloads))
	for i, p := range payloads {
		t := now
		if p.TS != nil {
			t = *p.TS
		}
		var subject string
		if p.Symbol != nil {
			subject = *p.Symbol
		}
		envs[i] = Envelope{SpecVersion: "1.0", ID: nuid.Next(), Source: g.source, Type: kind.CEType(),
			Subject: subject, Time: t, DataContentType: "application/json", ReceivedAt: now, Data: p}
	}
	return envs
}

// request waits for the worker's results and answers with them.
func (g *Gateway) request(w http.ResponseWriter, subject string, data []byte, single bool) {
	msg, err := g.opts.Conn.Request(subject, data, g.opts.RequestTimeout)
	if err != nil {
		writeJSON(w, http.StatusGatewayTimeout, Problem{Status: 504, Title: "Gateway Timeout", Detail: err.Error()})
		return
	}
	var results []Result
	if err := json.Unmarshal(msg.Data, &results); err != nil || len(results) == 0 {
		writeJSON(w, http.StatusBadGateway, Problem{Status: 502, Title: "Bad Gateway", Detail: "undecodable worker reply"})
		return
	}
	if !single {
		out := Results{Results: results}
		for _, res := range results {
			if res.Status == http.StatusOK {
				out.Enriched++
			} else {
				out.Rejected++
			}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	res := results[0]
	if res.Status != http.StatusOK {
		writeJSON(w, http.StatusUnprocessableEntity, Problem{Status: 422, Title: "Unprocessable Entity",
			Detail: "event " + res.ID + " failed validation", Errors: res.Errors})
		return
	}
	w.Header().Set("Content-Type", "application/cloudevents+json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Event)
}

// decodePayloads decodes a JSON object, a JSON array or NDJSON.
func decodePayloads(contentType string, body []byte) ([]Payload, bool, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/x-ndjson":
		var out []Payload
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 64<<10), maxBody)
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			var p Payload
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				return nil, false, err
			}
			out = append(out, p)
		}
		return out, false, sc.Err()
	case "application/json", "":
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) > 0 && trimmed[0] == '[' {
			var out []Payload
			err := json.Unmarshal(trimmed, &out)
			return out, false, err
		}
		var p Payload
		if err := json.Unmarshal(trimmed, &p); err != nil {
			return nil, true, err
		}
		return []Payload{p}, true, nil
	}
	return nil, false, fmt.Errorf("unsupported Content-Type %q", contentType)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	ct := "application/json"
	if status >= 400 {
		ct = "application/problem+json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
