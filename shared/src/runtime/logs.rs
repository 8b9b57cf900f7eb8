//! Logs and metrics in one line. Each request (and each scheduled run) writes one JSON log line
//! with its fields at the top level; fields named `metric.<name>` make that same line a
//! CloudWatch Embedded Metric Format document, so CloudWatch extracts the metrics from the log
//! line itself: no second line, no agent, no PutMetricData call.
//!
//! Written here rather than with a metrics crate (such as `metrics_cloudwatch_embedded`): a
//! recorder behind the `metrics` facade buffers values and flushes its own lines, which would
//! break one line per request and add a global recorder to every cold start, for the handful of
//! numbers one request has.

use std::fmt;

use lambda_http::tracing::subscriber::field::Visit;
use lambda_http::tracing::subscriber::filter::{EnvFilter, LevelFilter};
use lambda_http::tracing::subscriber::fmt::format::Writer;
use lambda_http::tracing::subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use lambda_http::tracing::subscriber::registry::LookupSpan;
use serde_json::{json, Map, Value};
use tracing::field::Field;
use tracing::{Event, Subscriber};

use crate::domain::clock::now_ms;

/// The CloudWatch namespace of the gateway's metrics.
pub const NAMESPACE: &str = "wxinvoice";

/// Structured logs to stdout: the level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (INFO by
/// default), JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`.
pub fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    init_tracing_with(&level, json, std::io::stdout);
}

/// The gateway's own events at `level`; every dependency at INFO at most, whatever `level` says:
/// at DEBUG and TRACE the HTTP clients, the AWS SDK and the Lambda runtime log URLs and
/// payloads, which carry the AppSecret, access tokens and tickets.
pub fn log_filter(level: &str) -> EnvFilter {
    let level: LevelFilter = level.trim().parse().unwrap_or(LevelFilter::INFO);
    let deps = level.min(LevelFilter::INFO);
    EnvFilter::new(format!("{deps},wxinvoice={level}"))
}

pub fn init_tracing_with<W>(level: &str, json: bool, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = lambda_http::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(log_filter(level))
        .with_writer(writer);
    if json {
        // Fields at the top level of each line, as Lambda Powertools writes them: a Logs
        // Insights query or a metric filter reads `errcode`, not `fields.errcode`; a line with
        // metrics is also an EMF document.
        builder.event_format(JsonLines).init();
    } else {
        builder.init();
    }
}

/// The JSON line format: level, message and fields at the top level; `metric.*` fields become
/// EMF metrics (unit from the name: `_ms` milliseconds, `_secs` seconds, otherwise a count),
/// dimensioned by `function_name` (when set) and `endpoint`, and by `endpoint` and `result` (the
/// errcode, as text) for the request counter.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Map::new();
        fields.insert("level".into(), json!(event.metadata().level().as_str()));
        event.record(&mut Fields(&mut fields));
        let line = emf(fields, now_ms());
        writeln!(writer, "{line}")
    }
}

/// The line for these fields at `now_ms`: as they are, or as an EMF document when some are
/// metrics.
pub fn emf(mut fields: Map<String, Value>, now_ms: u64) -> Value {
    let metric_keys: Vec<String> = fields
        .keys()
        .filter(|k| k.starts_with("metric."))
        .cloned()
        .collect();
    if metric_keys.is_empty() {
        return Value::Object(fields);
    }
    let mut metrics = Vec::new();
    for key in metric_keys {
        let value = fields.remove(&key).unwrap_or(Value::Null);
        let name = key.trim_start_matches("metric.").to_string();
        let unit = if name.ends_with("_ms") {
            "Milliseconds"
        } else if name.ends_with("_secs") {
            "Seconds"
        } else {
            "Count"
        };
        metrics.push(json!({"Name": name, "Unit": unit}));
        fields.insert(name, value);
    }
    let mut dims = Vec::new();
    let base: Vec<&str> = ["function_name", "endpoint"]
        .into_iter()
        .filter(|d| fields.get(*d).is_some_and(Value::is_string))
        .collect();
    if !base.is_empty() {
        dims.push(json!(base));
    }
    if fields.get("endpoint").is_some_and(Value::is_string) {
        if let Some(errcode) = fields.get("errcode").and_then(Value::as_i64) {
            fields.insert("result".into(), json!(errcode.to_string()));
            dims.push(json!(["endpoint", "result"]));
        }
    }
    fields.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": dims, "Metrics": metrics}],
        }),
    );
    Value::Object(fields)
}

/// Collects an event's fields as JSON values.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), json!(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), json!(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_line_without_metrics_stays_as_it_is() {
        let line = emf(fields(json!({"level": "INFO", "endpoint": "e"})), 1);
        assert_eq!(line, json!({"level": "INFO", "endpoint": "e"}));
    }

    #[test]
    fn metric_fields_make_an_emf_document_of_the_same_line() {
        let line = emf(
            fields(json!({
                "level": "INFO", "endpoint": "/getToken", "function_name": "fn", "errcode": 40001,
                "metric.requests": 1, "metric.wechat_ms": 12, "metric.token_left_secs": 3599,
            })),
            1_795_000_000_000,
        );
        assert_eq!(line["wechat_ms"], 12);
        assert_eq!(line["result"], "40001");
        assert!(line.get("metric.wechat_ms").is_none());
        let aws = &line["_aws"];
        assert_eq!(aws["Timestamp"], 1_795_000_000_000u64);
        let m = &aws["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], NAMESPACE);
        assert_eq!(
            m["Dimensions"],
            json!([["function_name", "endpoint"], ["endpoint", "result"]])
        );
        let units: Vec<(String, String)> = m["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["Name"].as_str().unwrap().into(),
                    x["Unit"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert!(units.contains(&("wechat_ms".into(), "Milliseconds".into())));
        assert!(units.contains(&("token_left_secs".into(), "Seconds".into())));
        assert!(units.contains(&("requests".into(), "Count".into())));
    }
}
