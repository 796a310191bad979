//! Prometheus text exposition of every core's counters and the engine's
//! state, for `GET /metrics`.
//!
//! Per-core series carry a `core` label; everything is read with relaxed
//! loads, so a scrape may see one counter a moment older than another, which
//! is all Prometheus needs.

use crate::clock;
use crate::http::response::STATUSES;
use crate::metrics::LATENCY_BOUNDS_US;
use crate::shared::Shared;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

/// Prometheus text exposition of every core's counters and the engine's state.
pub fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(8192);
    let cores = &shared.metrics;
    macro_rules! per_core {
        ($name:literal, $kind:literal, $help:literal, |$m:ident| $value:expr) => {{
            let _ = writeln!(
                out,
                "# HELP {} {}\n# TYPE {} {}",
                $name, $help, $name, $kind
            );
            for (core, $m) in cores.iter().enumerate() {
                let _ = writeln!(out, "{}{{core=\"{}\"}} {}", $name, core, $value);
            }
        }};
    }
    let _ = writeln!(
        out,
        "# HELP engine_responses_total Responses written, by status and core.\n# TYPE engine_responses_total counter"
    );
    for (core, m) in cores.iter().enumerate() {
        for (i, status) in STATUSES.iter().enumerate() {
            let _ = writeln!(
                out,
                "engine_responses_total{{core=\"{core}\",status=\"{status}\"}} {}",
                m.responses[i].get()
            );
        }
    }
    per_core!(
        "engine_connections_open",
        "gauge",
        "Open client connections.",
        |m| m.connections_open.get()
    );
    per_core!(
        "engine_connections_accepted_total",
        "counter",
        "Connections accepted.",
        |m| m.connections_accepted.get()
    );
    per_core!(
        "engine_connections_refused_total",
        "counter",
        "Connections closed on accept at the per-core limit.",
        |m| m.connections_refused.get()
    );
    per_core!(
        "engine_parse_errors_total",
        "counter",
        "Request heads refused (400, 414, 431).",
        |m| m.parse_errors.get()
    );
    per_core!(
        "engine_header_timeouts_total",
        "counter",
        "Connections cut off for slow request heads (408).",
        |m| m.header_timeouts.get()
    );
    per_core!(
        "engine_first_byte_timeouts_total",
        "counter",
        "New connections closed for sending nothing by their first-byte deadline.",
        |m| m.first_byte_timeouts.get()
    );
    per_core!(
        "engine_unknown_code_requests_total",
        "counter",
        "Requests for codes that do not exist (answered 404, not recorded as clicks).",
        |m| m.unknown_codes.get()
    );
    per_core!(
        "engine_unknown_host_requests_total",
        "counter",
        "Requests whose Host names no served domain (answered 404).",
        |m| m.unknown_hosts.get()
    );
    per_core!(
        "engine_rules_without_geoip_total",
        "counter",
        "Visits to links with a country rule while the engine has no GeoIP database (--geoip): the rule could not match.",
        |m| m.rules_without_geoip.get()
    );
    per_core!(
        "engine_visits_exhausted_total",
        "counter",
        "Visits of links with max_visits answered as expired because the core had none of their leased visits left.",
        |m| m.visits_exhausted.get()
    );
    per_core!(
        "engine_core_snapshot_sequence",
        "gauge",
        "Sequence of the snapshot the core serves (-1: none).",
        |m| m.snapshot_sequence.get()
    );
    per_core!(
        "engine_delta_entries",
        "gauge",
        "Upserts and tombstones in the core's delta map.",
        |m| m.delta_entries.get()
    );
    per_core!(
        "engine_core_delta_applied_seq",
        "gauge",
        "Highest change sequence the core has applied.",
        |m| m.delta_applied_seq.get()
    );

    let _ = writeln!(
        out,
        "# HELP engine_request_duration_seconds Time from the read completing a request to its answer written.\n# TYPE engine_request_duration_seconds histogram"
    );
    for (core, m) in cores.iter().enumerate() {
        let mut cumulative = 0u64;
        for (i, bound) in LATENCY_BOUNDS_US.iter().enumerate() {
            cumulative += m.latency_buckets[i].get();
            let _ = writeln!(
                out,
                "engine_request_duration_seconds_bucket{{core=\"{core}\",le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        cumulative += m.latency_buckets[LATENCY_BOUNDS_US.len()].get();
        let _ = writeln!(
            out,
            "engine_request_duration_seconds_bucket{{core=\"{core}\",le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "engine_request_duration_seconds_sum{{core=\"{core}\"}} {}",
            m.latency_sum_ns.get() as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "engine_request_duration_seconds_count{{core=\"{core}\"}} {cumulative}"
        );
    }

    per_core!(
        "engine_clicks_captured_total",
        "counter",
        "Click events recorded by the core.",
        |m| m.clicks_captured.get()
    );
    per_core!(
        "engine_clicks_dropped_total",
        "counter",
        "Click events dropped because the publisher's channel was full.",
        |m| m.clicks_dropped.get()
    );
    per_core!(
        "engine_click_batches_sent_total",
        "counter",
        "Click batches handed to the publisher.",
        |m| m.click_batches_sent.get()
    );

    let loaded = shared.loaded();
    let gauge = |out: &mut String, name: &str, help: &str, kind: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    gauge(
        &mut out,
        "engine_ready",
        "1 when a snapshot is loaded.",
        "gauge",
        u8::from(loaded.is_some()).to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_sequence",
        "Change sequence of the served snapshot (-1: none).",
        "gauge",
        loaded
            .as_ref()
            .map_or(-1, |s| s.sequence as i64)
            .to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_links",
        "Links in the served snapshot.",
        "gauge",
        loaded.as_ref().map_or(0, |s| s.links).to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_age_seconds",
        "Seconds since the served snapshot was built.",
        "gauge",
        loaded
            .as_ref()
            .map_or(0.0, |s| {
                (clock::unix_ms() as i64 - s.built_at_ms) as f64 / 1e3
            })
            .to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_signed",
        "1 when the served snapshot was opened by a trusted signature, not the complete check.",
        "gauge",
        u8::from(loaded.as_ref().is_some_and(|s| s.by_signature)).to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_loads_total",
        "Snapshots installed.",
        "counter",
        shared.snapshot_loads.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_refusals_total",
        "Snapshots refused (invalid, stale, or an implausible sequence).",
        "counter",
        shared.snapshot_refusals.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_pulls_total",
        "Snapshots pulled from control and installed.",
        "counter",
        shared.snapshot_pulls.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_pull_errors_total",
        "Snapshot pulls that failed (control unreachable, a refused file, a broken download).",
        "counter",
        shared.snapshot_pull_errors.load(Relaxed).to_string(),
    );
    let leases = &shared.leases.stats;
    for (name, help, kind, value) in [
        (
            "engine_lease_requests_total",
            "Visit lease requests sent to control (links with max_visits).",
            "counter",
            &leases.requests,
        ),
        (
            "engine_lease_request_errors_total",
            "Visit lease requests that failed (no answer, refused grant).",
            "counter",
            &leases.request_errors,
        ),
        (
            "engine_lease_visits_leased_total",
            "Visits of limited links leased to this engine.",
            "counter",
            &leases.visits_leased,
        ),
        (
            "engine_lease_visits_returned_total",
            "Leased visits this engine did not serve and gave back.",
            "counter",
            &leases.visits_returned,
        ),
        (
            "engine_lease_links",
            "Links with max_visits this engine tracks.",
            "gauge",
            &leases.links,
        ),
    ] {
        gauge(&mut out, name, help, kind, value.load(Relaxed).to_string());
    }
    gauge(
        &mut out,
        "engine_delta_seq",
        "Highest change sequence sent to the cores.",
        "gauge",
        shared.delta_sent_seq.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_delta_lag",
        "Changes in the stream not yet received.",
        "gauge",
        shared.delta_lag.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_deltas_received_total",
        "Changes received from the stream.",
        "counter",
        shared.deltas_received.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_deltas_invalid_total",
        "Changes refused as malformed (logged and skipped).",
        "counter",
        shared.deltas_invalid.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_nats_connected",
        "1 while the change stream is being consumed.",
        "gauge",
        u8::from(shared.nats_connected.load(Relaxed)).to_string(),
    );
    let _ = writeln!(
        out,
        "# HELP engine_deltas_refused_total Changes skipped for their signature, by reason.\n# TYPE engine_deltas_refused_total counter"
    );
    for (reason, count) in shared.deltas_refused.by_reason() {
        let _ = writeln!(
            out,
            "engine_deltas_refused_total{{reason=\"{reason}\"}} {count}"
        );
    }
    let mut streams = vec![("links", &shared.links_stream)];
    if let Some(clicks) = &shared.clicks {
        streams.push(("clicks", &clicks.stream));
    }
    let _ = writeln!(
        out,
        "# HELP engine_stream_state What the engine last found for each stream it uses (1 for the current state).\n# TYPE engine_stream_state gauge"
    );
    for (stream, watch) in &streams {
        let current = watch.state();
        for state in crate::streams::StreamState::ALL {
            let _ = writeln!(
                out,
                "engine_stream_state{{stream=\"{stream}\",state=\"{}\"}} {}",
                state.name(),
                u8::from(state == current)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP engine_stream_refusals_total Look-ups that found a stream without any limit and refused it.\n# TYPE engine_stream_refusals_total counter"
    );
    for (stream, watch) in &streams {
        let _ = writeln!(
            out,
            "engine_stream_refusals_total{{stream=\"{stream}\",reason=\"no_limits\"}} {}",
            watch.refused_no_limits.load(Relaxed)
        );
    }
    if let Some(clicks) = &shared.clicks {
        for (name, kind, help, value) in [
            (
                "engine_click_events_published_total",
                "counter",
                "Click events acknowledged by JetStream.",
                &clicks.events_published,
            ),
            (
                "engine_click_batches_published_total",
                "counter",
                "Click batches acknowledged by JetStream.",
                &clicks.batches_published,
            ),
            (
                "engine_click_events_spooled_total",
                "counter",
                "Click events written to the disk spool.",
                &clicks.events_spooled,
            ),
            (
                "engine_click_events_replayed_total",
                "counter",
                "Spooled click events published later.",
                &clicks.events_replayed,
            ),
            (
                "engine_click_events_spool_dropped_total",
                "counter",
                "Click events dropped because the spool was full.",
                &clicks.events_dropped,
            ),
            (
                "engine_click_publish_failures_total",
                "counter",
                "Click batch publishes that failed or timed out.",
                &clicks.publish_failures,
            ),
            (
                "engine_click_spool_bytes",
                "gauge",
                "Bytes in the click spool.",
                &clicks.spool_bytes,
            ),
            (
                "engine_click_spool_batches",
                "gauge",
                "Batches in the click spool.",
                &clicks.spool_batches,
            ),
            (
                "engine_click_spool_quarantined_total",
                "counter",
                "Spool files that could not be read, moved to spool/quarantine/.",
                &clicks.spool_quarantined,
            ),
            (
                "engine_click_nats_connected",
                "gauge",
                "1 while the click stream accepts batches.",
                &clicks.connected,
            ),
            (
                "engine_click_publish_seconds_count",
                "counter",
                "Publish windows (pipelined batches, acks awaited).",
                &clicks.publish_latency_count,
            ),
        ] {
            gauge(&mut out, name, help, kind, value.load(Relaxed).to_string());
        }
        gauge(
            &mut out,
            "engine_click_publish_seconds_sum",
            "Time spent publishing windows and awaiting their acks.",
            "counter",
            (clicks.publish_latency_us_sum.load(Relaxed) as f64 / 1e6).to_string(),
        );
    }
    if let Some(tls) = &shared.tls {
        tls_metrics(&mut out, shared, tls);
    }
    gauge(
        &mut out,
        "engine_uptime_seconds",
        "Seconds since start.",
        "gauge",
        shared.started.elapsed().as_secs_f64().to_string(),
    );
    out
}

/// The TLS port's series: handshakes by kind and failures by reason per
/// core, and the certificate store's reloads and refusals.
fn tls_metrics(out: &mut String, shared: &Shared, tls: &crate::tls_control::TlsControl) {
    use crate::tls::conn::HandshakeFailure;
    let _ = writeln!(
        out,
        "# HELP engine_tls_handshakes_total TLS handshakes completed, by kind (full or resumed).\n# TYPE engine_tls_handshakes_total counter"
    );
    for (core, m) in shared.metrics.iter().enumerate() {
        for (i, kind) in ["full", "resumed"].iter().enumerate() {
            let _ = writeln!(
                out,
                "engine_tls_handshakes_total{{core=\"{core}\",kind=\"{kind}\"}} {}",
                m.tls_handshakes[i].get()
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP engine_tls_handshake_failures_total TLS handshakes that failed (the connection was closed), by reason.\n# TYPE engine_tls_handshake_failures_total counter"
    );
    for (core, m) in shared.metrics.iter().enumerate() {
        for failure in HandshakeFailure::ALL {
            let _ = writeln!(
                out,
                "engine_tls_handshake_failures_total{{core=\"{core}\",reason=\"{}\"}} {}",
                failure.name(),
                m.tls_handshake_failures[failure.index()].get()
            );
        }
    }
    for (name, help, kind, value) in [
        (
            "engine_tls_certificates",
            "Certificate pairs served (exact and wildcard names).",
            "gauge",
            &tls.names,
        ),
        (
            "engine_tls_reloads_total",
            "New TLS configurations handed to the cores (certificates or ticket keys changed).",
            "counter",
            &tls.reloads,
        ),
        (
            "engine_tls_certificate_refusals_total",
            "Certificate pairs refused by a load (unparsable, mismatched, expired, wrong name; logged with the file).",
            "counter",
            &tls.refusals,
        ),
        (
            "engine_tls_ticket_key_errors_total",
            "Loads of the ticket key file that failed (the previous keys stay).",
            "counter",
            &tls.ticket_key_errors,
        ),
    ] {
        let value = value.load(Relaxed);
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}
