// Package schemas is sluice's wire contract: the market-data event types and
// their versions, the CloudEvents envelope, the MessagePack codecs for events,
// batch frames, reply frames and dead letters, the NATS subject names, the
// validation rules and the JSON Schemas of the HTTP API.
//
// It sits between every other part of the flow: the gateway encodes what it
// receives with it, workers decode, validate and re-encode with it, and
// subscribers decode enriched events with it. It depends on nothing else in
// sluice.
//
// The codecs are hand-written appenders and zero-copy readers: on the hot path
// an event is encoded into a pooled buffer and decoded without allocating for
// field names. Every value they write is plain MessagePack (maps with string
// keys), so any MessagePack library reads it; README.md documents the layout
// with a hex example.
package schemas
