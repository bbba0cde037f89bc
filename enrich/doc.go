// Package enrich holds sluice's reference data and the enrichers that derive
// fields from it.
//
// It sits after validation in the worker pipeline: a worker decodes a batch,
// validates each event with package schemas, then calls [Enricher.Enrich],
// which looks the event's symbol up in a [Store] and fills a
// [schemas.Enriched] with the instrument, derived prices (mid, spread,
// notional) and the notional in US dollars. The worker publishes the result on
// <prefix>.enriched.<kind>.<symbol>.
//
// Reference data is a list of instruments and FX rates ([RefData]). It comes
// from a JSON file ([ParseRefData], [LoadFile], the embedded [Sample]) or from
// a NATS JetStream key-value bucket: [Upload] writes a [RefData] into the
// bucket and [Watch] keeps a [Store] in step with it, so every worker of every
// group sees the same data and an update reaches them all without a restart.
//
// Lookups are lock-free and do not allocate: a [Store] publishes an immutable
// snapshot through an atomic pointer and writers copy it. The package holds no
// HTTP code and no NATS subscriptions other than the key-value watch.
package enrich
