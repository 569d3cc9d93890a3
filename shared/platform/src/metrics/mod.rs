//! CloudWatch metrics in Embedded Metric Format: a JSON line on stdout that
//! CloudWatch turns into metrics, with no API call and no latency.

use serde_json::{Map, Value, json};

/// The CloudWatch namespace every metric of the shop is filed under.
pub const NAMESPACE: &str = "Shop";

/// A metric unit as CloudWatch names it.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    /// A number of things (requests, messages, errors).
    Count,
    /// A duration, such as a request's latency.
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF document: a set of values sharing one set of dimensions.
#[derive(Debug)]
pub struct MetricSet {
    dimensions: Vec<(&'static str, String)>,
    values: Vec<(&'static str, f64, Unit)>,
}

impl MetricSet {
    /// An empty set, with no dimensions and no values.
    pub fn new() -> Self {
        Self { dimensions: Vec::new(), values: Vec::new() }
    }

    /// Files every value of the set under `name` = `value` (such as `Function`);
    /// a name must not also be used for a value.
    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    /// Adds the metric `name` with one data point.
    pub fn value(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        self.values.push((name, value, unit));
        self
    }

    /// The EMF document at `timestamp_ms` (milliseconds since the epoch).
    pub fn to_json(&self, timestamp_ms: i128) -> Value {
        let mut document = Map::new();
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(name, _)| *name).collect();
        let metrics: Vec<Value> =
            self.values.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()})).collect();
        document.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dimension_names],
                    "Metrics": metrics,
                }],
            }),
        );
        for (name, value) in &self.dimensions {
            document.insert((*name).into(), Value::String(value.clone()));
        }
        for (name, value, _) in &self.values {
            document.insert((*name).into(), json!(value));
        }
        Value::Object(document)
    }

    /// Writes the document as its own stdout line, where CloudWatch finds it.
    pub fn emit(self) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        println!("{}", self.to_json(now));
    }
}

/// Emits one count under this function's name (see `telemetry::function_name`).
pub fn count(metric: &'static str, value: f64) {
    MetricSet::new().dimension("Function", crate::telemetry::function_name()).value(metric, value, Unit::Count).emit();
}

impl Default for MetricSet {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_emf_specification() {
        let document = MetricSet::new()
            .dimension("Function", "login")
            .value("Requests", 1.0, Unit::Count)
            .value("Latency", 12.5, Unit::Milliseconds)
            .to_json(1_700_000_000_000);
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Shop");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(directive["Metrics"][1], json!({"Name": "Latency", "Unit": "Milliseconds"}));
        assert_eq!(document["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(document["Function"], "login");
        assert_eq!(document["Latency"], 12.5);
    }
}
