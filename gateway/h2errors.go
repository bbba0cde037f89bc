package gateway

import (
	"github.com/VictoriaMetrics/metrics"
)

// h2ErrorReasons are the reasons Go's HTTP/2 server (go1.26) passes to
// http.HTTP2Config.CountError: a frame the framer refused
// (frame_<type>_<why>), a connection or stream error
// (<conn|stream>_<code>_<why>), or a peer that stopped answering PINGs.
// TestH2ErrorReasonsCoverGo checks the list against the toolchain's
// source; a reason missing here is counted as "other".
var h2ErrorReasons = [...]string{
	"conn_ENHANCE_YOUR_CALM_too_many_early_resets",
	"conn_FLOW_CONTROL_ERROR_setting_win_size",
	"conn_PROTOCOL_ERROR_ack_mystery",
	"conn_PROTOCOL_ERROR_data_on_idle",
	"conn_PROTOCOL_ERROR_dup_trailers",
	"conn_PROTOCOL_ERROR_first_settings",
	"conn_PROTOCOL_ERROR_headers_even",
	"conn_PROTOCOL_ERROR_ping_on_stream",
	"conn_PROTOCOL_ERROR_push_promise",
	"conn_PROTOCOL_ERROR_reset_idle_stream",
	"conn_PROTOCOL_ERROR_settings_big_or_dups",
	"conn_PROTOCOL_ERROR_stream_idle",
	"conn_PROTOCOL_ERROR_stream_went_down",
	"conn_close_lost_ping",
	"frame_continuation_zero_stream",
	"frame_data_pad_byte_short",
	"frame_data_pad_too_big",
	"frame_data_stream_0",
	"frame_goaway_has_stream",
	"frame_goaway_short",
	"frame_headers_pad_short",
	"frame_headers_pad_too_big",
	"frame_headers_prio_short",
	"frame_headers_prio_weight_short",
	"frame_headers_zero_stream",
	"frame_ping_has_stream",
	"frame_ping_length",
	"frame_priority_bad_length",
	"frame_priority_zero_stream",
	"frame_pushpromise_pad_short",
	"frame_pushpromise_pad_too_big",
	"frame_pushpromise_promiseid_short",
	"frame_pushpromise_zero_stream",
	"frame_rststream_bad_len",
	"frame_rststream_zero_stream",
	"frame_settings_ack_with_length",
	"frame_settings_has_stream",
	"frame_settings_mod_6",
	"frame_settings_window_size_too_big",
	"frame_windowupdate_bad_len",
	"frame_windowupdate_zero_inc_conn",
	"frame_windowupdate_zero_inc_stream",
	"stream_FLOW_CONTROL_ERROR_bad_flow",
	"stream_FLOW_CONTROL_ERROR_data_flow",
	"stream_FLOW_CONTROL_ERROR_flow_on_data_length",
	"stream_PROTOCOL_ERROR_bad_connect",
	"stream_PROTOCOL_ERROR_bad_path_method",
	"stream_PROTOCOL_ERROR_over_max_streams",
	"stream_PROTOCOL_ERROR_priority",
	"stream_PROTOCOL_ERROR_send_too_much",
	"stream_PROTOCOL_ERROR_trailers_bogus",
	"stream_PROTOCOL_ERROR_trailers_not_ended",
	"stream_PROTOCOL_ERROR_trailers_pseudo",
	"stream_REFUSED_STREAM_over_max_streams_race",
	"stream_STREAM_CLOSED_closed",
	"stream_STREAM_CLOSED_headers_half_closed",
}

// Reasons of sluice_gateway_http2_errors_total that are not Go's.
const (
	// h2ReasonControlFlood counts h2c connections closed by
	// netconn.Options.ControlFrameLimit.
	h2ReasonControlFlood = "control_flood"
	// h2ReasonOther counts every reason not in h2ErrorReasons.
	h2ReasonOther = "other"
)

// h2Errors counts the HTTP/2 server's errors by reason in
// sluice_gateway_http2_errors_total{reason}: every counter is made up
// front, so counting one is a map lookup, never a metric built per call.
type h2Errors struct {
	by    map[string]*metrics.Counter
	other *metrics.Counter
}

// h2FloodMetric is the counter of reason h2ReasonControlFlood, which
// newH2Errors creates and Start hands to the listener.
const h2FloodMetric = `sluice_gateway_http2_errors_total{reason="` + h2ReasonControlFlood + `"}`

func newH2Errors(set *metrics.Set) *h2Errors {
	c := func(reason string) *metrics.Counter {
		return set.NewCounter(`sluice_gateway_http2_errors_total{reason="` + reason + `"}`)
	}
	set.NewCounter(h2FloodMetric)
	e := &h2Errors{by: make(map[string]*metrics.Counter, len(h2ErrorReasons)), other: c(h2ReasonOther)}
	for _, r := range h2ErrorReasons {
		e.by[r] = c(r)
	}
	return e
}

// count is http.HTTP2Config.CountError.
func (e *h2Errors) count(reason string) {
	if c, ok := e.by[reason]; ok {
		c.Inc()
		return
	}
	e.other.Inc()
}
