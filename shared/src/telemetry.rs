//! Logs and metrics in one line. Each request (and each scheduled run) writes one JSON log line
//! with its fields at the top level; fields named `metric.<name>` make that same line a
//! CloudWatch Embedded Metric Format document, so CloudWatch extracts the metrics from the log
//! line itself: no second line, no agent, no PutMetricData call.
//!
//! Written here rather than with a metrics crate (such as `metrics_cloudwatch_embedded`): a
//! recorder behind the `metrics` facade buffers values and flushes its own lines, which would
//! break one line per request and add a global recorder to every cold start, for the handful of
//! numbers one request has. The per-request latencies of WeChat and DynamoDB are summed in a
//! task-local set by the handlers, which the clients add to after each call.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use lambda_http::tracing::subscriber::field::Visit;
use lambda_http::tracing::subscriber::fmt::format::Writer;
use lambda_http::tracing::subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use lambda_http::tracing::subscriber::registry::LookupSpan;
use serde_json::{json, Map, Value};
use tracing::field::Field;
use tracing::{Event, Subscriber};

/// The CloudWatch namespace of the gateway's metrics.
pub const NAMESPACE: &str = "wxinvoice";

/// Time one request spent waiting on its dependencies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    pub wechat_ms: u64,
    pub wechat_calls: u32,
    pub dynamodb_ms: u64,
    pub dynamodb_calls: u32,
}

tokio::task_local! {
    static SPENT: Cell<Spent>;
}

/// Runs `f` with its own account of dependency time, and returns it with the output. (`f` is
/// boxed: a handler's whole future inline is deeper than rustc's layout recursion limit, and in
/// debug builds larger than a test thread's stack.)
pub async fn measured<F: Future>(f: F) -> (F::Output, Spent) {
    let f = Box::pin(f);
    SPENT
        .scope(Cell::new(Spent::default()), async {
            let out = f.await;
            (out, SPENT.with(Cell::get))
        })
        .await
}

/// Adds one WeChat call of `d` to the current request's account (if any).
pub fn wechat_call(d: Duration) {
    let _ = SPENT.try_with(|s| {
        let mut v = s.get();
        v.wechat_ms += d.as_millis() as u64;
        v.wechat_calls += 1;
        s.set(v);
    });
}

/// Adds one DynamoDB operation of `d` to the current request's account (if any).
pub fn dynamodb_call(d: Duration) {
    let _ = SPENT.try_with(|s| {
        let mut v = s.get();
        v.dynamodb_ms += d.as_millis() as u64;
        v.dynamodb_calls += 1;
        s.set(v);
    });
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
        let line = emf(fields, crate::token::now_ms());
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

    #[tokio::test]
    async fn dependency_time_is_counted_per_request() {
        let ((), spent) = measured(async {
            wechat_call(Duration::from_millis(7));
            dynamodb_call(Duration::from_millis(3));
            wechat_call(Duration::from_millis(5));
        })
        .await;
        assert_eq!(
            spent,
            Spent {
                wechat_ms: 12,
                wechat_calls: 2,
                dynamodb_ms: 3,
                dynamodb_calls: 1
            }
        );
        // Outside a request: nothing to count, nothing breaks.
        wechat_call(Duration::from_millis(1));
    }
}
