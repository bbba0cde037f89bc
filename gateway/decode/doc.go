// Package decode turns the body of a POST /v1/events/{type} request into
// events, without reflection and without allocating per event on a warm
// gateway: JSON (one object or an array), NDJSON and JSON text sequences,
// MessagePack (one map or an array), CloudEvents structured, batched and
// binary mode. Strings in the events alias the body.
//
// [Body] is the entry point; a refusal is an [*Error] carrying the HTTP
// status the gateway answers with. Besides the shape of the body, Body
// checks what can be checked before anything is published: at most
// maxEvents events, distinct CloudEvents ids in one request, and every
// field within its size bound ([schemas.CheckSizes]). The rules of the
// event types themselves (prices, sizes, times, reference data) are the
// workers'.
package decode
