//! How a parsed log line is shown: one coloured line per record or metrics document.

use std::collections::HashMap;

use anstyle::{AnsiColor, Style};
use serde_json::{Map, Value};

use super::{Entry, Filter, Level, Record, clock_of, is_alarming, parse};

/// Filters and renders lines, remembering which function each request id
/// belongs to (the Lambda runtime's own lines name only the request).
pub(super) struct View {
    filter: Filter,
    functions: HashMap<String, String>,
}

impl View {
    pub(super) fn new(filter: Filter) -> Self {
        Self { filter, functions: HashMap::new() }
    }

    /// The line as shown, or `None` when the filter hides it. `arrived` is
    /// when a followed line was read, shown dimmed for records that carry no time.
    pub(super) fn render(&mut self, line: &str, arrived: Option<time::OffsetDateTime>) -> Option<String> {
        match parse(line) {
            Entry::Record(mut record) => {
                self.learn(&mut record);
                self.filter.admits_record(&record).then(|| render_record(&record, arrived))
            }
            Entry::Metrics { time, metrics, properties } => {
                let property = |keys: &[&str]| keys.iter().find_map(|k| properties.get(*k)?.as_str());
                let function = property(&["Function", "function"]);
                let request_id = property(&["RequestId", "request_id", "requestId"]);
                let correlation_id = property(&["CorrelationId", "correlation_id"]);
                let prefix = |wanted: &Option<String>, value: Option<&str>| {
                    wanted.as_ref().is_none_or(|w| value.is_some_and(|v| v.starts_with(w.as_str())))
                };
                let wanted = self.filter.metrics
                    && (self.filter.functions.is_empty()
                        || function.is_some_and(|f| self.filter.functions.iter().any(|w| w == f)))
                    && prefix(&self.filter.request_id, request_id)
                    && prefix(&self.filter.correlation_id, correlation_id);
                wanted.then(|| render_metrics(time, function, &metrics, &properties, arrived))
            }
            Entry::Other(text) => {
                if text.trim().is_empty() || self.filter.selects() {
                    return None;
                }
                if is_alarming(&text) {
                    Some(paint(Style::new().fg_color(Some(AnsiColor::Red.into())), &text))
                } else {
                    self.filter.all.then(|| dim(&text))
                }
            }
        }
    }

    pub(super) fn learn(&mut self, record: &mut Record) {
        let Some(request_id) = &record.request_id else { return };
        match &record.function {
            Some(function) => {
                if self.functions.len() > 10_000 {
                    self.functions.clear();
                }
                self.functions.insert(request_id.clone(), function.clone());
            }
            None => record.function = self.functions.get(request_id).cloned(),
        }
    }
}

pub(super) fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

pub(super) fn dim(text: &str) -> String {
    paint(Style::new().dimmed(), text)
}

/// An id as shown: a generated one (a UUID) by its first 8 characters, a
/// short one a caller chose (`checkout-7f3a`) whole; either works as a filter.
pub(super) fn short(id: Option<&String>) -> String {
    match id {
        None => "-".repeat(8),
        Some(id) if id.chars().count() <= 16 => format!("{id:<8}"),
        Some(id) => id.chars().take(8).collect(),
    }
}

pub(super) fn time_column(time: Option<&String>, arrived: Option<time::OffsetDateTime>) -> String {
    match (time, arrived) {
        (Some(time), _) => time.clone(),
        (None, Some(arrived)) => dim(&clock_of(arrived)),
        (None, None) => " ".repeat(12),
    }
}

pub(super) fn render_record(record: &Record, arrived: Option<time::OffsetDateTime>) -> String {
    let level = match record.level {
        Some(level) => paint(level.style(), &format!("{:<5}", record.level_text.to_uppercase())),
        None => format!("{:<5}", record.level_text),
    };
    let function = paint(
        Style::new().fg_color(Some(AnsiColor::Cyan.into())),
        &format!("{:<16}", record.function.as_deref().unwrap_or("-")),
    );
    let ids = dim(&format!("req:{} corr:{}", short(record.request_id.as_ref()), short(record.correlation_id.as_ref())));
    let message = match record.level {
        Some(Level::Error | Level::Warn) => paint(Style::new().bold(), &record.message),
        _ => record.message.clone(),
    };
    let mut line = format!("{} {level} {function} {ids} {message}", time_column(record.time.as_ref(), arrived));
    for (key, value) in &record.fields {
        line.push_str(&format!(" {}={}", paint(Style::new().fg_color(Some(AnsiColor::Blue.into())), key), show(value)));
    }
    if record.cold_start {
        line.push(' ');
        line.push_str(&paint(Style::new().fg_color(Some(AnsiColor::Yellow.into())), "cold"));
    }
    if !record.context.is_empty() {
        let context: Vec<String> = record.context.iter().map(|(key, value)| format!("{key}={}", show(value))).collect();
        line.push(' ');
        line.push_str(&dim(&context.join(" ")));
    }
    line
}

pub(super) fn render_metrics(
    time: Option<String>,
    function: Option<&str>,
    metrics: &[(String, Value, String)],
    properties: &Map<String, Value>,
    arrived: Option<time::OffsetDateTime>,
) -> String {
    let values: Vec<String> = metrics
        .iter()
        .map(|(name, value, unit)| {
            let unit = match unit.as_str() {
                "Milliseconds" => "ms",
                "Seconds" => "s",
                "Microseconds" => "µs",
                "Bytes" => "B",
                "Percent" => "%",
                _ => "",
            };
            format!("{name}={}{unit}", show(value))
        })
        .collect();
    let rest: Vec<String> = properties
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "Function" | "function"))
        .map(|(key, value)| format!("{key}={}", show(value)))
        .collect();
    let mut line = format!(
        "{} {} {} {}",
        time_column(time.as_ref(), arrived),
        paint(Style::new().fg_color(Some(AnsiColor::Magenta.into())), "EMF  "),
        paint(Style::new().fg_color(Some(AnsiColor::Cyan.into())), &format!("{:<16}", function.unwrap_or("-"))),
        values.join(" ")
    );
    if !rest.is_empty() {
        line.push(' ');
        line.push_str(&dim(&rest.join(" ")));
    }
    line
}

/// A field's value: bare when that reads unambiguously, JSON otherwise.
pub(super) fn show(value: &Value) -> String {
    match value {
        Value::String(text)
            if !text.is_empty()
                && !text.chars().any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control()) =>
        {
            text.clone()
        }
        Value::Number(number) => {
            // EMF counts are floats: 1.0 reads better as 1.
            match number.as_f64() {
                Some(f) if number.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
                _ => number.to_string(),
            }
        }
        other => other.to_string(),
    }
}
