//! CloudWatch metrics in Embedded Metric Format: one JSON line on stdout per
//! invocation, which CloudWatch turns into metrics with no API call and no
//! latency. Anything during an invocation adds values ([`add`], [`count`]);
//! the layer that ran the invocation (HTTP layer, batch processor, relay)
//! writes them as one document at its end ([`flush`]).
//!
//! Names are in [`names`]; the namespace, service and environment come from
//! configuration (`METRICS_NAMESPACE`, `SERVICE_NAME`, `ENVIRONMENT`), the
//! function and its version from Lambda (`AWS_LAMBDA_FUNCTION_VERSION`).

pub mod names;

use std::borrow::Cow;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// The CloudWatch namespace when `METRICS_NAMESPACE` is not set.
pub const NAMESPACE: &str = "Shop";

/// A metric unit as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things (requests, messages, errors); values of one
    /// invocation are summed.
    Count,
    /// A duration, such as a request's latency; every value is kept.
    Milliseconds,
    /// A duration or age in seconds; every value is kept.
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// Where and under what the metrics of this process are filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimensions {
    /// The CloudWatch namespace.
    pub namespace: String,
    /// The service (`shop`).
    pub service: String,
    /// The stack's environment (`dev`, `staging`, `prod`; `local` on a laptop).
    pub environment: String,
    /// The function (its cargo package name).
    pub function: String,
    /// The executed Lambda version (`$LATEST` locally).
    pub version: String,
}

impl Dimensions {
    /// From the environment, for `function`.
    pub fn from_env(function: &str) -> Self {
        let var = |name: &str, default: &str| {
            std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
        };
        Self {
            namespace: var("METRICS_NAMESPACE", NAMESPACE),
            service: var("SERVICE_NAME", "shop"),
            environment: var("ENVIRONMENT", "local"),
            function: function.to_owned(),
            version: var("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        }
    }
}

/// The properties (searchable, not dimensions) an invocation's document
/// carries: Lambda's request id, the caller's correlation id (API requests)
/// and the X-Ray trace id.
pub const REQUEST_ID: &str = "RequestId";
/// See [`REQUEST_ID`].
pub const CORRELATION_ID: &str = "CorrelationId";
/// See [`REQUEST_ID`].
pub const TRACE_ID: &str = "TraceId";

static DIMENSIONS: OnceLock<Dimensions> = OnceLock::new();
/// This invocation's values so far. Lambda sends a process one event at a time.
static PENDING: Mutex<Vec<(&'static str, f64, Unit)>> = Mutex::new(Vec::new());

/// Sets this process's dimensions (once, at init).
pub fn init(dimensions: Dimensions) {
    let _ = DIMENSIONS.set(dimensions);
}

fn dimensions() -> Cow<'static, Dimensions> {
    DIMENSIONS.get().map_or_else(|| Cow::Owned(Dimensions::from_env(crate::invocation::function_name())), Cow::Borrowed)
}

/// Adds one value of `name` to this invocation's document.
pub fn add(name: &'static str, value: f64, unit: Unit) {
    PENDING.lock().unwrap_or_else(PoisonError::into_inner).push((name, value, unit));
}

/// Adds `value` to the count `name` of this invocation.
pub fn count(name: &'static str, value: f64) {
    add(name, value, Unit::Count);
}

/// Writes this invocation's document, with `properties` (request id, trace
/// id: searchable, not dimensions), as one stdout line; then starts afresh.
/// Writes nothing when nothing was added.
pub fn flush(properties: &[(&'static str, &str)]) {
    let values = std::mem::take(&mut *PENDING.lock().unwrap_or_else(PoisonError::into_inner));
    if values.is_empty() {
        return;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    // Serialized into one string and printed as one piece: printing the
    // document through its `Display` formats it token by token.
    let Ok(mut line) = serde_json::to_string(&document(&dimensions(), &values, properties, now)) else { return };
    line.push('\n');
    print!("{line}");
}

/// The EMF document of `values` (counts summed, durations kept as arrays):
/// serialize it (`serde_json`) to get the line. Serialized straight from
/// the values, with no JSON tree built and dropped on every invocation.
pub fn document<'a>(
    dimensions: &'a Dimensions,
    values: &[(&'static str, f64, Unit)],
    properties: &'a [(&'static str, &'a str)],
    timestamp_ms: i128,
) -> Document<'a> {
    let mut merged: Vec<(&'static str, Unit, Vec<f64>)> = Vec::new();
    for (name, value, unit) in values {
        match merged.iter_mut().find(|(existing, _, _)| existing == name) {
            Some((_, Unit::Count, sum)) => sum[0] += value,
            Some((_, _, all)) => all.push(*value),
            None => merged.push((name, *unit, vec![*value])),
        }
    }
    Document { dimensions, merged, properties, timestamp_ms }
}

/// One invocation's EMF document (see [`document`]): the `_aws` metadata,
/// the dimensions, the properties and each metric's value (a count's sum,
/// or every duration). Metric, dimension and property names never meet:
/// metrics are named in [`names`] (a test keeps them apart).
pub struct Document<'a> {
    dimensions: &'a Dimensions,
    merged: Vec<(&'static str, Unit, Vec<f64>)>,
    properties: &'a [(&'static str, &'a str)],
    timestamp_ms: i128,
}

/// The names (and units) of metrics, as a directive lists them.
struct Listed<'a, I>(&'a I);

impl<'a, I> Serialize for Listed<'a, I>
where
    I: Clone + Iterator<Item = &'a (&'static str, Unit, Vec<f64>)>,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Metric<'a> {
            name: &'a str,
            unit: &'a str,
        }
        serializer.collect_seq(self.0.clone().map(|(name, unit, _)| Metric { name, unit: unit.as_str() }))
    }
}

/// One directive: a namespace, its dimension set and the metrics filed under it.
struct Directive<'a, I> {
    namespace: &'a str,
    dimensions: &'a [&'a str],
    metrics: Listed<'a, I>,
}

impl<'a, I> Serialize for Directive<'a, I>
where
    I: Clone + Iterator<Item = &'a (&'static str, Unit, Vec<f64>)>,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("Namespace", self.namespace)?;
        map.serialize_entry("Dimensions", &[self.dimensions])?;
        map.serialize_entry("Metrics", &self.metrics)?;
        map.end()
    }
}

const FUNCTION_DIMENSIONS: [&str; 3] = ["Service", "Environment", "Function"];
const VERSION_DIMENSIONS: [&str; 4] = ["Service", "Environment", "Function", "Version"];

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Aws<'a>(&'a Document<'a>);
        impl Serialize for Aws<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let document = self.0;
                let namespace = document.dimensions.namespace.as_str();
                let all = document.merged.iter();
                let by_version = document.merged.iter().filter(|(name, _, _)| names::BY_VERSION.contains(name));
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("Timestamp", &document.timestamp_ms)?;
                let first = Directive { namespace, dimensions: &FUNCTION_DIMENSIONS, metrics: Listed(&all) };
                if by_version.clone().next().is_some() {
                    let second = Directive { namespace, dimensions: &VERSION_DIMENSIONS, metrics: Listed(&by_version) };
                    map.serialize_entry("CloudWatchMetrics", &(first, second))?;
                } else {
                    map.serialize_entry("CloudWatchMetrics", &[first])?;
                }
                map.end()
            }
        }
        let dimensions = self.dimensions;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("_aws", &Aws(self))?;
        for (name, value) in [
            ("Service", &dimensions.service),
            ("Environment", &dimensions.environment),
            ("Function", &dimensions.function),
            ("Version", &dimensions.version),
        ] {
            map.serialize_entry(name, value)?;
        }
        for (name, value) in self.properties {
            map.serialize_entry(name, value)?;
        }
        for (name, _, values) in &self.merged {
            if let [value] = values.as_slice() {
                map.serialize_entry(name, value)?;
            } else {
                map.serialize_entry(name, values)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn json(document: Document<'_>) -> Value {
        serde_json::to_value(&document).unwrap()
    }

    fn dimensions() -> Dimensions {
        Dimensions {
            namespace: "Shop".into(),
            service: "shop".into(),
            environment: "prod".into(),
            function: "place-order".into(),
            version: "7".into(),
        }
    }

    #[test]
    fn one_document_holds_an_invocations_values_and_files_only_server_errors_by_version() {
        let values = [
            (names::REQUESTS, 1.0, Unit::Count),
            (names::LATENCY, 12.5, Unit::Milliseconds),
            (names::ORDERS_PLACED, 1.0, Unit::Count),
            (names::ORDERS_PLACED, 1.0, Unit::Count),
            (names::SERVER_ERRORS, 0.0, Unit::Count),
            (names::LATENCY, 3.0, Unit::Milliseconds),
        ];
        let dimensions = dimensions();
        let document = json(document(&dimensions, &values, &[("RequestId", "r-1")], 1_700_000_000_000));
        let directives = document["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2);
        assert_eq!(directives[0]["Namespace"], "Shop");
        assert_eq!(directives[0]["Dimensions"], json!([["Service", "Environment", "Function"]]));
        assert_eq!(directives[0]["Metrics"].as_array().unwrap().len(), 4, "each name once");
        assert_eq!(directives[1]["Dimensions"], json!([["Service", "Environment", "Function", "Version"]]));
        assert_eq!(directives[1]["Metrics"], json!([{"Name": "ServerErrors", "Unit": "Count"}]));
        assert_eq!(document["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!((document["Function"].as_str(), document["Version"].as_str()), (Some("place-order"), Some("7")));
        assert_eq!(document["OrdersPlaced"], 2.0, "counts are summed");
        assert_eq!(document["Latency"], json!([12.5, 3.0]), "durations are all kept");
        assert_eq!(document["RequestId"], "r-1");

        let consumer = json(super::document(&dimensions, &[(names::MESSAGES_PROCESSED, 3.0, Unit::Count)], &[], 0));
        assert_eq!(consumer["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(), 1, "nothing to file by version");
    }

    /// The line as written, key for key: a key written twice would show
    /// here (a JSON tree keeps only the last).
    #[test]
    fn the_line_is_the_document_written_once_per_key() {
        let dimensions = dimensions();
        let values = [(names::REQUESTS, 1.0, Unit::Count), (names::LATENCY, 2.5, Unit::Milliseconds)];
        let line = serde_json::to_string(&document(&dimensions, &values, &[(REQUEST_ID, "r-1")], 1_700_000_000_000));
        let expected = concat!(
            r#"{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"Shop","#,
            r#""Dimensions":[["Service","Environment","Function"]],"Metrics":[{"Name":"Requests","Unit":"Count"},"#,
            r#"{"Name":"Latency","Unit":"Milliseconds"}]}]},"Service":"shop","Environment":"prod","#,
            r#""Function":"place-order","Version":"7","RequestId":"r-1","Requests":1.0,"Latency":2.5}"#,
        );
        assert_eq!(line.unwrap(), expected);
    }

    #[test]
    fn a_consumers_failed_and_parked_records_are_filed_by_version_for_its_deployment_alarm() {
        let values = [(names::MESSAGES_PROCESSED, 7.0, Unit::Count), (names::RECORDS_FAILED, 3.0, Unit::Count)];
        let dimensions = dimensions();
        let document = json(document(&dimensions, &values, &[], 0));
        let directives = document["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2, "{document}");
        assert_eq!(directives[1]["Dimensions"], json!([["Service", "Environment", "Function", "Version"]]));
        assert_eq!(directives[1]["Metrics"], json!([{"Name": "RecordsFailed", "Unit": "Count"}]));
        assert_eq!(document["RecordsFailed"], 3.0);
    }

    #[test]
    fn every_name_is_listed_once_with_its_unit() {
        let mut seen = std::collections::HashSet::new();
        for (name, _) in names::ALL {
            assert!(seen.insert(*name), "{name} listed twice");
            assert!(name.chars().all(char::is_alphanumeric), "{name}");
        }
        // A document's keys are its metadata, dimensions, properties and
        // metrics side by side: no metric may take another's key.
        let dimensions = VERSION_DIMENSIONS.into_iter().chain(FUNCTION_DIMENSIONS);
        for key in dimensions.chain(["_aws", REQUEST_ID, CORRELATION_ID, TRACE_ID]) {
            assert!(!seen.contains(key), "a metric is named {key}");
        }
    }
}
