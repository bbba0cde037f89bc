package ops

// The catalogue of the metric families that sluice's processes expose on
// /metrics: their type and help, and for histograms the le bounds. The
// metrics themselves are created where they are counted (gateway, workers,
// ops); their names are an operational contract that the recording and
// alert rules in ops/prometheus/ and the runbook in ops/README.md rely on,
// so they are described here, in one place, beside those.
//
// A family missing here is still written, with a placeholder help and its
// type guessed from its samples, but TestMetricsExposition in cmd/sluice
// fails on it: add a line here with each new metric.

// catalog holds the families by name.
var catalog = func() map[string]Family {
	m := make(map[string]Family)
	for _, list := range [][]Family{sluiceFamilies, runtimeFamilies} {
		for _, f := range list {
			if _, dup := m[f.Name]; dup {
				panic("ops: metric family described twice: " + f.Name)
			}
			m[f.Name] = f
		}
	}
	return m
}()

// LookupFamily returns the catalogue's description of the family called
// name.
func LookupFamily(name string) (Family, bool) {
	f, ok := catalog[name]
	return f, ok
}

// sluiceFamilies are sluice's own metrics.
var sluiceFamilies = []Family{
	// ops
	{Name: "sluice_ready", Type: "gauge", Help: "Whether the readiness check named by check passes (1) or fails (0), evaluated at each scrape as /readyz does; check=\"nats\" is the NATS connection."},

	// gateway: requests and events
	{Name: "sluice_gateway_requests_total", Type: "counter", Help: "HTTP requests answered on the data listener, by status code (\"other\" for a code without a series of its own)."},
	{Name: "sluice_gateway_request_duration_seconds", Type: "histogram", Help: "Seconds from a request's arrival to its answer on the data listener, by mode (async: 202 once published; result: waited for the worker's result)."},
	{Name: "sluice_gateway_stage_seconds", Type: "histogram", Help: "Seconds a request spent in each stage on the gateway, one observation per request (reply_transit: per reply frame): admit (arrival to admitted), decode (body read, decoded, encoded), batch_wait (handed to the batcher until its batch went to NATS), publish (batch handed to NATS until done; durable: until stored), results (published until every worker result is back), reply_transit (a reply frame from the worker's Sluice-Sent to its receipt), response_write (results in, or published, until the answer is written)."},
	{Name: "sluice_gateway_events_accepted_total", Type: "counter", Help: "Events admitted and handed to the batcher, by event type."},
	{Name: "sluice_gateway_results_total", Type: "counter", Help: "Worker results delivered to waiting requests, by event type and outcome (enriched or rejected)."},
	{Name: "sluice_gateway_result_timeouts_total", Type: "counter", Help: "Requests that waited for a result past their deadline and were answered 504."},
	{Name: "sluice_gateway_replies_dropped_total", Type: "counter", Help: "Reply messages from workers that arrived for no waiting request (it had timed out or gone)."},
	{Name: "sluice_gateway_reply_decode_errors_total", Type: "counter", Help: "Reply messages from workers that could not be decoded."},
	{Name: "sluice_gateway_no_responders_total", Type: "counter", Help: "Batches for which NATS reported no responders: no worker subscribed to the ingest subject."},
	{Name: "sluice_gateway_waiting_requests", Type: "gauge", Help: "Requests waiting now for a worker's result."},
	{Name: "sluice_gateway_http2_errors_total", Type: "counter", Help: "HTTP/2 connection and stream errors of the data listener, by reason (Go's error names, control_flood, other)."},

	// gateway: batches
	{Name: "sluice_gateway_batches_flushed_total", Type: "counter", Help: "Batches the gateway published to NATS, by what flushed them (count, bytes, linger, idle, shutdown)."},
	{Name: "sluice_gateway_batch_events", Type: "histogram", Help: "Events per batch published by the gateway."},
	{Name: "sluice_gateway_batch_bytes", Type: "histogram", Help: "Bytes per batch published by the gateway (the NATS message body)."},
	{Name: "sluice_gateway_nats_publish_errors_total", Type: "counter", Help: "Batches the NATS client refused to publish (disconnected past its buffer, payload too large, ...); their requests were answered with an error."},
	{Name: "sluice_gateway_batches_lost_total", Type: "counter", Help: "Batches this gateway published that no worker reported done within the expiry time: a worker died holding them, NATS dropped them, or the done frame was lost (core NATS is at most once)."},
	{Name: "sluice_gateway_publish_acks_total", Type: "counter", Help: "Durable delivery: batches the ingest stream acknowledged as stored (their requests were then answered 202)."},
	{Name: "sluice_gateway_publish_ack_seconds", Type: "histogram", Help: "Durable delivery: seconds from a batch's publish to the stream's ack, retries included."},
	{Name: "sluice_gateway_publish_retries_total", Type: "counter", Help: "Durable delivery: publishes retried (same Nats-Msg-Id) after an ack timeout or a retryable error, within the retry budget."},
	{Name: "sluice_gateway_publish_refused_total", Type: "counter", Help: "Durable delivery: batches not stored, their requests answered 503, by reason (retry_budget: retries past --retry-budget; backpressure: --durable-max-pending reached; failed: retries exhausted or an error not worth retrying)."},
	{Name: "sluice_gateway_publish_unacked_batches", Type: "gauge", Help: "Durable delivery: batches published and not yet acknowledged by the stream now, against --durable-max-pending."},
	{Name: "sluice_gateway_batcher_pending_bytes", Type: "gauge", Help: "Bytes of events held by the gateway's batchers now, waiting to be published."},

	// gateway: subscribers (gateway/stream)
	{Name: "sluice_stream_subscribers", Type: "gauge", Help: "Subscribers served now on GET /v1/streams/{type} (SSE, NDJSON, WebSocket); bounded by --stream-max-subscribers."},
	{Name: "sluice_stream_subscribers_refused_total", Type: "counter", Help: "Subscriptions refused with 503: past --stream-max-subscribers, or while shutting down."},
	{Name: "sluice_stream_subscribers_limited_total", Type: "counter", Help: "Subscriptions refused with 429 because their client (with --keys-file or JWT: the key's client, the token's sub) already held --stream-max-subscribers-per-key streams open."},
	{Name: "sluice_stream_events_received_total", Type: "counter", Help: "Enriched events the streams' NATS filters received (each once, duplicates of overlapping filters dropped)."},
	{Name: "sluice_stream_events_delivered_total", Type: "counter", Help: "Events written to subscribers, snapshots included (one per subscriber that got it)."},
	{Name: "sluice_stream_events_conflated_total", Type: "counter", Help: "Quote updates replaced by a newer one of the same symbol before a slow subscriber read them (sluicereplaced)."},
	{Name: "sluice_stream_slow_consumers_cut_total", Type: "counter", Help: "Subscribers disconnected with a final event because they fell more than --stream-buffer events behind on trades."},
	{Name: "sluice_stream_cache_evictions_total", Type: "counter", Help: "Symbols evicted from the streams' last-value cache past --stream-cache-symbols (their sequence starts again)."},
	{Name: "sluice_stream_nats_dropped_total", Type: "counter", Help: "Enriched events the gateway's NATS client dropped because the streams' backlog of a type was full (a slow consumer); every symbol's sluiceseq then skips one, so subscribers see the gap."},
	{Name: "sluice_stream_bad_subjects_total", Type: "counter", Help: "Enriched events on a subject whose symbol token does not decode; dropped."},
	{Name: "sluice_stream_undecodable_events_total", Type: "counter", Help: "Enriched events that could not be transcoded for a subscriber; skipped."},

	// gateway: admission
	{Name: "sluice_gateway_denials_total", Type: "counter", Help: "Requests denied by authentication or the client's limits, by reason (missing_credentials, invalid_key, invalid_token, expired_token 401; forbidden 403; rate_limited 429); the denial audit logs them once per client and reason per --audit-interval."},
	{Name: "sluice_gateway_rejected_total", Type: "counter", Help: "Requests refused by admission, by reason (unauthorized, forbidden, rate_limited 429, no_workers, concurrency, shed, backpressure 503), priority and worker group."},
	{Name: "sluice_gateway_group_depth", Type: "gauge", Help: "Events queued for a worker group now, in events, as the gateway's admission sees it (sent and not reported done, held by other gateways, held in batchers)."},
	{Name: "sluice_gateway_group_depth_part", Type: "gauge", Help: "The parts of sluice_gateway_group_depth, in events: sent (this gateway, not yet reported done), others (other gateways, as reported by workers), held (this gateway's batchers)."},
	{Name: "sluice_gateway_group_depth_bound", Type: "gauge", Help: "Depth bound of a worker group, in events: past it, admission sheds requests by priority."},
	{Name: "sluice_gateway_group_workers", Type: "gauge", Help: "Live workers of a worker group, as their load reports show (0 after NATS reported no responders)."},
	{Name: "sluice_gateway_group_drain_rate", Type: "gauge", Help: "Rate at which a worker group drains its queue, in events per second, as its workers report."},
	{Name: "sluice_gateway_concurrency_limit", Type: "gauge", Help: "Adaptive (AIMD) concurrency limit of a worker group: requests in flight the gateway admits at once."},
	{Name: "sluice_gateway_concurrency_in_use", Type: "gauge", Help: "Requests of a worker group in flight now, against sluice_gateway_concurrency_limit."},

	// workers
	{Name: "sluice_worker_batches_total", Type: "counter", Help: "Batches a worker group received on its ingest subject."},
	{Name: "sluice_worker_stage_seconds", Type: "histogram", Help: "Seconds a batch spent in each stage on a worker, one observation per batch, by group: transit (the gateway's Sluice-Sent to receipt here: NATS transit and queueing, in durable mode the stream's backlog too; across hosts it includes clock skew), queue (received until a processing goroutine took it), validate_enrich (decoded, validated, enriched), publish (enriched events, dead letters and replies handed to NATS; durable: until stored)."},
	{Name: "sluice_worker_batch_duration_seconds", Type: "histogram", Help: "Seconds a worker took to process one batch: decode, validate, enrich, publish."},
	{Name: "sluice_worker_events_total", Type: "counter", Help: "Events processed by a worker group, by event type and outcome (enriched, or rejected: sent as a dead letter)."},
	{Name: "sluice_worker_rejected_total", Type: "counter", Help: "Rejected events (dead letters) by event type and first validation code; the codes add up to sluice_worker_events_total{outcome=\"rejected\"}."},
	{Name: "sluice_worker_replies_total", Type: "counter", Help: "Reply messages a worker group published to gateways' inboxes."},
	{Name: "sluice_worker_decode_errors_total", Type: "counter", Help: "Batch frames cut short or events with undecodable data, received by a worker group."},
	{Name: "sluice_worker_slow_consumer_drops_total", Type: "counter", Help: "Batches the NATS client dropped because the worker's subscription was past its pending limits (slow consumer)."},
	{Name: "sluice_worker_publish_errors_total", Type: "counter", Help: "Publishes (enriched events, dead letters, replies) the NATS client refused."},
	{Name: "sluice_worker_stage_errors_total", Type: "counter", Help: "Batches a worker abandoned because a pipeline stage failed."},
	{Name: "sluice_worker_abandoned_batches_total", Type: "counter", Help: "Batches skipped because a shutdown's deadline ended before they were processed."},
	{Name: "sluice_worker_inflight_batches", Type: "gauge", Help: "Batches being processed now by a worker group."},
	{Name: "sluice_worker_queued_batches", Type: "gauge", Help: "Batches waiting now in a worker group: its queue plus the NATS subscription's pending messages."},
	{Name: "sluice_worker_acks_total", Type: "counter", Help: "Durable batches a worker group acknowledged: their enriched events and dead letters stored, their replies sent."},
	{Name: "sluice_worker_naks_total", Type: "counter", Help: "Durable batches a worker group handed back for a later delivery (a stage failed or their outcome could not be stored)."},
	{Name: "sluice_worker_redeliveries_total", Type: "counter", Help: "Durable batches a worker group received again (their delivery count above 1)."},
	{Name: "sluice_worker_store_retries_total", Type: "counter", Help: "Attempts a worker group made again, in place and without a nak, to store a durable batch's enriched events and dead letters after a transient failure (no stream leader, ack timeout, lost connection, backpressure)."},
	{Name: "sluice_worker_in_progress_total", Type: "counter", Help: "In-progress acks a worker group sent for durable batches still running at half their ack wait."},
	{Name: "sluice_worker_duplicates_total", Type: "counter", Help: "Enriched events and dead letters a worker group published that the stream had stored already (same Nats-Msg-Id): redeliveries and client retries."},
	{Name: "sluice_worker_dead_lettered_batches_total", Type: "counter", Help: "Durable batches a worker group stored whole in the dead-letter stream and terminated after their last delivery failed, by reason (stage_failed, publish_failed, or undecodable on the first delivery)."},
	{Name: "sluice_worker_consumer_pending", Type: "gauge", Help: "Batches in the ingest stream not yet delivered to the group's durable consumer, as a worker last read them."},
	{Name: "sluice_worker_consumer_ack_pending", Type: "gauge", Help: "Batches delivered by the group's durable consumer and not yet acknowledged, as a worker last read them."},
}

// runtimeFamilies are the Go runtime and process metrics that
// VictoriaMetrics/metrics writes (metrics.WriteProcessMetrics).
var runtimeFamilies = []Family{
	{Name: "go_info", Type: "gauge", Help: "Always 1; the version label is the Go version the binary was built with."},
	{Name: "go_info_ext", Type: "gauge", Help: "Always 1; the labels are the compiler, GOARCH, GOOS and GOROOT of the build."},
	{Name: "go_cgo_calls_count", Type: "counter", Help: "Calls from Go to C made by the process."},
	{Name: "go_cpu_count", Type: "gauge", Help: "Logical CPUs usable by the process."},
	{Name: "go_gomaxprocs", Type: "gauge", Help: "GOMAXPROCS: the OS threads that can run Go code at once."},
	{Name: "go_goroutines", Type: "gauge", Help: "Goroutines that exist now."},
	{Name: "go_threads", Type: "gauge", Help: "OS threads created by the Go runtime."},
	{Name: "go_memlimit_bytes", Type: "gauge", Help: "The Go runtime's soft memory limit (GOMEMLIMIT), in bytes."},
	{Name: "go_sched_latencies_seconds", Type: "histogram", Help: "Seconds goroutines spent runnable before they ran (scheduler latency)."},
	{Name: "go_mutex_wait_seconds_total", Type: "counter", Help: "Seconds goroutines spent blocked on sync.Mutex or sync.RWMutex."},
	{Name: "go_gc_duration_seconds", Type: "summary", Help: "Seconds of the garbage collector's stop-the-world pauses."},
	{Name: "go_gc_pauses_seconds", Type: "histogram", Help: "Seconds of the garbage collector's stop-the-world pauses, as a histogram."},
	{Name: "go_gc_forced_count", Type: "counter", Help: "Garbage collections forced by the application (runtime.GC)."},
	{Name: "go_gc_cpu_seconds_total", Type: "counter", Help: "CPU seconds spent by the garbage collector."},
	{Name: "go_gc_mark_assist_cpu_seconds_total", Type: "counter", Help: "CPU seconds goroutines spent assisting the garbage collector's marking."},
	{Name: "go_scavenge_cpu_seconds_total", Type: "counter", Help: "CPU seconds spent returning unused memory to the OS."},
	{Name: "go_memstats_alloc_bytes", Type: "gauge", Help: "Bytes of heap objects allocated and not yet freed."},
	{Name: "go_memstats_alloc_bytes_total", Type: "counter", Help: "Bytes allocated for heap objects since the process started."},
	{Name: "go_memstats_buck_hash_sys_bytes", Type: "gauge", Help: "Bytes of memory in profiling bucket hash tables."},
	{Name: "go_memstats_frees_total", Type: "counter", Help: "Heap objects freed since the process started."},
	{Name: "go_memstats_gc_cpu_fraction", Type: "gauge", Help: "Fraction of the available CPU time used by the garbage collector since the process started."},
	{Name: "go_memstats_gc_sys_bytes", Type: "gauge", Help: "Bytes of memory in garbage collection metadata."},
	{Name: "go_memstats_heap_alloc_bytes", Type: "gauge", Help: "Bytes of heap objects allocated and not yet freed."},
	{Name: "go_memstats_heap_idle_bytes", Type: "gauge", Help: "Bytes in idle (unused) heap spans."},
	{Name: "go_memstats_heap_inuse_bytes", Type: "gauge", Help: "Bytes in in-use heap spans."},
	{Name: "go_memstats_heap_objects", Type: "gauge", Help: "Heap objects allocated and not yet freed."},
	{Name: "go_memstats_heap_released_bytes", Type: "gauge", Help: "Bytes of physical memory returned to the OS."},
	{Name: "go_memstats_heap_sys_bytes", Type: "gauge", Help: "Bytes of heap memory obtained from the OS."},
	{Name: "go_memstats_last_gc_time_seconds", Type: "gauge", Help: "When the last garbage collection finished, in seconds since the Unix epoch."},
	{Name: "go_memstats_lookups_total", Type: "counter", Help: "Pointer lookups performed by the runtime."},
	{Name: "go_memstats_mallocs_total", Type: "counter", Help: "Heap objects allocated since the process started."},
	{Name: "go_memstats_mcache_inuse_bytes", Type: "gauge", Help: "Bytes in use by mcache structures."},
	{Name: "go_memstats_mcache_sys_bytes", Type: "gauge", Help: "Bytes of memory obtained from the OS for mcache structures."},
	{Name: "go_memstats_mspan_inuse_bytes", Type: "gauge", Help: "Bytes in use by mspan structures."},
	{Name: "go_memstats_mspan_sys_bytes", Type: "gauge", Help: "Bytes of memory obtained from the OS for mspan structures."},
	{Name: "go_memstats_next_gc_bytes", Type: "gauge", Help: "Heap size, in bytes, at which the next garbage collection starts."},
	{Name: "go_memstats_other_sys_bytes", Type: "gauge", Help: "Bytes of memory in miscellaneous runtime allocations."},
	{Name: "go_memstats_stack_inuse_bytes", Type: "gauge", Help: "Bytes in stack spans."},
	{Name: "go_memstats_stack_sys_bytes", Type: "gauge", Help: "Bytes of stack memory obtained from the OS."},
	{Name: "go_memstats_sys_bytes", Type: "gauge", Help: "Bytes of memory obtained from the OS in total."},
	{Name: "process_cpu_seconds_total", Type: "counter", Help: "CPU seconds used by the process, user and system."},
	{Name: "process_cpu_seconds_user_total", Type: "counter", Help: "CPU seconds used by the process in user mode."},
	{Name: "process_cpu_seconds_system_total", Type: "counter", Help: "CPU seconds used by the process in kernel mode."},
	{Name: "process_major_pagefaults_total", Type: "counter", Help: "Page faults of the process that needed disk I/O."},
	{Name: "process_minor_pagefaults_total", Type: "counter", Help: "Page faults of the process served without disk I/O."},
	{Name: "process_num_threads", Type: "gauge", Help: "OS threads of the process."},
	{Name: "process_resident_memory_bytes", Type: "gauge", Help: "Resident memory of the process, in bytes."},
	{Name: "process_resident_memory_peak_bytes", Type: "gauge", Help: "Peak resident memory of the process, in bytes."},
	{Name: "process_resident_memory_anon_bytes", Type: "gauge", Help: "Resident anonymous memory of the process, in bytes."},
	{Name: "process_resident_memory_file_bytes", Type: "gauge", Help: "Resident file-backed memory of the process, in bytes."},
	{Name: "process_resident_memory_shared_bytes", Type: "gauge", Help: "Resident shared memory of the process, in bytes."},
	{Name: "process_virtual_memory_bytes", Type: "gauge", Help: "Virtual memory of the process, in bytes."},
	{Name: "process_virtual_memory_peak_bytes", Type: "gauge", Help: "Peak virtual memory of the process, in bytes."},
	{Name: "process_start_time_seconds", Type: "gauge", Help: "When the process started, in seconds since the Unix epoch."},
	{Name: "process_open_fds", Type: "gauge", Help: "File descriptors the process has open."},
	{Name: "process_max_fds", Type: "gauge", Help: "Most file descriptors the process may open."},
	{Name: "process_io_read_bytes_total", Type: "counter", Help: "Bytes the process read, from any source."},
	{Name: "process_io_written_bytes_total", Type: "counter", Help: "Bytes the process wrote, to any destination."},
	{Name: "process_io_read_syscalls_total", Type: "counter", Help: "Read system calls made by the process."},
	{Name: "process_io_write_syscalls_total", Type: "counter", Help: "Write system calls made by the process."},
	{Name: "process_io_storage_read_bytes_total", Type: "counter", Help: "Bytes the process read from storage."},
	{Name: "process_io_storage_written_bytes_total", Type: "counter", Help: "Bytes the process wrote to storage."},
}
