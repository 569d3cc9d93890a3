//! `cargo xtask logs`: the local stack's function logs, one readable line per
//! record. The functions write tracing-subscriber's JSON lines (the event's
//! fields flattened, the current span under `span`), interleaved with EMF
//! metric documents (an `_aws` key) and with `cargo lambda watch`'s own
//! output (builds, instance starts, panics); this turns them into
//!
//! ```text
//! 12:04:31.518 INFO  register         req:cae56a5f corr:cae56a5f user registered user_id=01M8AJ0D… cold method=POST path=/api/v1/auth/register
//! ```
//!
//! and filters them by request id, correlation id, function and level.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use anyhow::Context;
use local_cloud::local_dir;
use serde_json::{Map, Value};

/// Shows the functions' logs of the dev stack (or of `--file`) readably.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep reading as the functions write (like `tail -f`); without it,
    /// print what the log holds and stop.
    #[arg(short, long)]
    pub follow: bool,
    /// The log to read instead of the dev stack's (`.local/dev/logs/functions-<api port>.log`,
    /// the newest if several); a test run's is `.local/test/logs/functions.log`.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Only the records of this request (Lambda's request id; a prefix, such as
    /// the 8 characters shown, is enough).
    #[arg(long)]
    pub request_id: Option<String>,
    /// Only the records of this correlation id (a prefix is enough): one
    /// order across the API, its queues and its email.
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// Only the records of this function (repeat or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub function: Vec<String>,
    /// Only records at this level or above.
    #[arg(long, value_enum, ignore_case = true)]
    pub level: Option<Level>,
    /// Also show the EMF metric documents, one line each.
    #[arg(long)]
    pub metrics: bool,
    /// Also show `cargo lambda watch`'s own lines (builds, instance starts),
    /// dimmed; without it only its errors and panics show.
    #[arg(long)]
    pub all: bool,
    /// Of what the log already holds, only the last N lines shown.
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
    /// Colour: auto (when stdout is a terminal and NO_COLOR is unset), always, never.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

/// When to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// A record's level, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "TRACE" => Some(Self::Trace),
            "DEBUG" => Some(Self::Debug),
            "INFO" => Some(Self::Info),
            "WARN" | "WARNING" => Some(Self::Warn),
            "ERROR" | "FATAL" => Some(Self::Error),
            _ => None,
        }
    }

    fn style(self) -> Style {
        match self {
            Self::Trace => Style::new().fg_color(Some(AnsiColor::Magenta.into())),
            Self::Debug => Style::new().fg_color(Some(AnsiColor::Blue.into())),
            Self::Info => Style::new().fg_color(Some(AnsiColor::Green.into())),
            Self::Warn => Style::new().fg_color(Some(AnsiColor::Yellow.into())).bold(),
            Self::Error => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
        }
    }
}

/// Where `cargo xtask dev` with its API on `api_port` writes its functions'
/// output (one file per stack: two dev stacks may run side by side).
pub fn dev_log(api_port: u16) -> PathBuf {
    local_dir().join(format!("dev/logs/functions-{api_port}.log"))
}

/// The dev stack's functions log written last (the running stack's, or the
/// busiest of several).
fn latest_dev_log() -> anyhow::Result<PathBuf> {
    let dir = local_dir().join("dev/logs");
    let newest = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with("functions-") && name.ends_with(".log")
        })
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .max();
    newest.map(|(_, path)| path).with_context(|| {
        format!(
            "no functions log in {}: is `cargo xtask dev` running? (--file reads another, such as .local/test/logs/functions.log)",
            dir.display()
        )
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.color {
        ColorWhen::Auto => {}
        ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
    }
    let path = match &args.file {
        Some(path) => path.clone(),
        None => latest_dev_log()?,
    };
    let mut view = View::new(Filter::from_args(&args));
    let mut out = anstream::stdout();
    let outcome = if args.follow {
        follow(&path, &mut view, args.lines, &mut out)
    } else {
        let mut tail = Tail::open(&path).with_context(|| {
            format!(
                "no log at {}: is `cargo xtask dev` running? (--file reads another, such as .local/test/logs/functions.log)",
                path.display()
            )
        })?;
        let lines = tail.read_lines()?;
        print_backlog(&lines, &mut view, args.lines, &mut out)
    };
    match outcome {
        // `cargo xtask logs | head` closes the pipe early: not an error.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

/// Follows `path` on a thread of its own, printing every record readably
/// (the view `cargo xtask logs -f` gives): `cargo xtask dev` shows its
/// functions' output this way.
pub fn spawn_follow(path: PathBuf) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut view = View::new(Filter::default());
        let _ = follow(&path, &mut view, None, &mut anstream::stdout());
    })
}

fn print_backlog(lines: &[String], view: &mut View, last: Option<usize>, out: &mut impl Write) -> io::Result<()> {
    let shown: Vec<String> = lines.iter().filter_map(|line| view.render(line, None)).collect();
    let skip = last.map_or(0, |n| shown.len().saturating_sub(n));
    for line in &shown[skip..] {
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// Prints what `path` holds (the last `last` lines of it), then whatever is
/// appended, until the process stops. A log that shrinks was started anew
/// (another `cargo xtask dev`): reading starts over from its beginning.
fn follow(path: &Path, view: &mut View, last: Option<usize>, out: &mut impl Write) -> io::Result<()> {
    let mut waiting = false;
    let mut tail = loop {
        match Tail::open(path) {
            Ok(tail) => break tail,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if !waiting {
                    eprintln!("xtask: waiting for {} (start `cargo xtask dev`)...", path.display());
                    waiting = true;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(error) => return Err(error),
        }
    };
    let backlog = tail.read_lines()?;
    print_backlog(&backlog, view, last, out)?;
    loop {
        if tail.restarted()? {
            writeln!(out, "{}", dim("--- the log started over (a new stack?) ---"))?;
        }
        let lines = tail.read_lines()?;
        if lines.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let now = time::OffsetDateTime::now_utc();
        for line in &lines {
            if let Some(text) = view.render(line, Some(now)) {
                writeln!(out, "{text}")?;
            }
        }
        out.flush()?;
    }
}

/// Reads complete lines from a growing file.
struct Tail {
    file: File,
    offset: u64,
    pending: Vec<u8>,
}

impl Tail {
    fn open(path: &Path) -> io::Result<Self> {
        Ok(Self { file: File::open(path)?, offset: 0, pending: Vec::new() })
    }

    /// True (and back at the start) when the file is now shorter than what was read.
    fn restarted(&mut self) -> io::Result<bool> {
        if self.file.metadata()?.len() >= self.offset {
            return Ok(false);
        }
        self.offset = 0;
        self.pending.clear();
        self.file.seek(SeekFrom::Start(0))?;
        Ok(true)
    }

    /// Every complete line appended since the last call (a partial last line
    /// waits for its end).
    fn read_lines(&mut self) -> io::Result<Vec<String>> {
        let mut bytes = Vec::new();
        self.file.seek(SeekFrom::Start(self.offset))?;
        let read = self.file.read_to_end(&mut bytes)?;
        self.offset += read as u64;
        self.pending.extend_from_slice(&bytes);
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else { return Ok(Vec::new()) };
        let complete: Vec<u8> = self.pending.drain(..=end).collect();
        Ok(String::from_utf8_lossy(&complete).lines().map(str::to_owned).collect())
    }
}

/// What to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub functions: Vec<String>,
    pub level: Option<Level>,
    pub metrics: bool,
    pub all: bool,
}

impl Filter {
    fn from_args(args: &Args) -> Self {
        Self {
            request_id: args.request_id.clone(),
            correlation_id: args.correlation_id.clone(),
            functions: args.function.iter().map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()).collect(),
            level: args.level,
            metrics: args.metrics,
            all: args.all,
        }
    }

    /// Does any filter pick records by what they belong to?
    fn selects(&self) -> bool {
        self.request_id.is_some() || self.correlation_id.is_some() || !self.functions.is_empty()
    }

    fn admits_record(&self, record: &Record) -> bool {
        let prefix = |wanted: &Option<String>, value: &Option<String>| {
            wanted.as_ref().is_none_or(|w| value.as_ref().is_some_and(|v| v.starts_with(w.as_str())))
        };
        self.level.is_none_or(|min| record.level.unwrap_or(Level::Info) >= min)
            && prefix(&self.request_id, &record.request_id)
            && prefix(&self.correlation_id, &record.correlation_id)
            && (self.functions.is_empty() || record.function.as_ref().is_some_and(|f| self.functions.contains(f)))
    }
}

/// One line of the log, understood.
#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Record(Record),
    /// An EMF document: its timestamp, metrics (name, value, unit) and the
    /// rest of its keys (dimensions, properties).
    Metrics {
        time: Option<String>,
        metrics: Vec<(String, Value, String)>,
        properties: Map<String, Value>,
    },
    /// Anything not a JSON object: `cargo lambda watch`, cargo, a panic.
    Other(String),
}

/// A tracing record (event fields flattened, its span under `span`).
#[derive(Debug, Clone, PartialEq, Default)]
struct Record {
    time: Option<String>,
    level: Option<Level>,
    level_text: String,
    message: String,
    function: Option<String>,
    request_id: Option<String>,
    correlation_id: Option<String>,
    trace_id: Option<String>,
    cold_start: bool,
    /// The event's own fields.
    fields: Vec<(String, Value)>,
    /// The span's fields other than the ones above.
    context: Vec<(String, Value)>,
}

/// Span (and top-level) keys shown in their own columns.
const SHOWN_KEYS: &[&str] =
    &["name", "function", "request_id", "requestId", "trace_id", "xrayTraceId", "correlation_id", "cold_start"];

fn parse(line: &str) -> Entry {
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(line) else {
        return Entry::Other(line.to_owned());
    };
    if let Some(aws) = object.remove("_aws") {
        return metrics_entry(&aws, object);
    }
    let text = |value: Option<Value>| match value {
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let time = text(object.remove("timestamp")).map(|t| clock(&t));
    let level_text = text(object.remove("level")).unwrap_or_default();
    let message = text(object.remove("message")).unwrap_or_default();
    let mut span = match object.remove("span") {
        Some(Value::Object(span)) => span,
        _ => Map::new(),
    };
    // tracing-subscriber's bookkeeping, not the event's.
    for key in ["target", "filename", "line_number", "threadName", "threadId", "spans"] {
        object.remove(key);
    }
    let mut take =
        |keys: &[&str]| keys.iter().find_map(|key| text(object.remove(*key)).or_else(|| text(span.remove(*key))));
    let function = take(&["function"]);
    let request_id = take(&["request_id", "requestId"]);
    let trace_id = take(&["trace_id", "xrayTraceId"]);
    let correlation_id = take(&["correlation_id"]);
    let cold_start =
        matches!(span.remove("cold_start").or_else(|| object.remove("cold_start")), Some(Value::Bool(true)));
    // An empty span field is one the work never learnt (a poison message has no event id).
    span.retain(|key, value| !SHOWN_KEYS.contains(&key.as_str()) && value.as_str() != Some(""));
    Entry::Record(Record {
        time,
        level: Level::parse(&level_text),
        level_text,
        message,
        function,
        request_id,
        correlation_id,
        trace_id,
        cold_start,
        fields: object.into_iter().collect(),
        context: span.into_iter().collect(),
    })
}

fn metrics_entry(aws: &Value, mut properties: Map<String, Value>) -> Entry {
    let time = aws["Timestamp"]
        .as_i64()
        .and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok().map(clock_of));
    let mut metrics = Vec::new();
    for directive in aws["CloudWatchMetrics"].as_array().into_iter().flatten() {
        for metric in directive["Metrics"].as_array().into_iter().flatten() {
            let Some(name) = metric["Name"].as_str() else { continue };
            if metrics.iter().any(|(n, _, _): &(String, Value, String)| n == name) {
                continue;
            }
            let value = properties.remove(name).unwrap_or(Value::Null);
            metrics.push((name.to_owned(), value, metric["Unit"].as_str().unwrap_or_default().to_owned()));
        }
    }
    Entry::Metrics { time, metrics, properties }
}

/// `HH:MM:SS.mmm` (UTC) of an RFC 3339 time; the text itself if it is not one.
fn clock(rfc3339: &str) -> String {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map_or_else(|_| rfc3339.to_owned(), clock_of)
}

fn clock_of(time: time::OffsetDateTime) -> String {
    let time = time.to_offset(time::UtcOffset::UTC);
    format!("{:02}:{:02}:{:02}.{:03}", time.hour(), time.minute(), time.second(), time.millisecond())
}

/// Lines `cargo lambda watch` passes on that an operator must see even
/// without `--all`: build errors, a function's panic or failed main, its own
/// errors (but not its stopping a function to reload it after a code change).
fn is_alarming(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.starts_with("error")
        || trimmed.starts_with("Error:")
        || line.contains("panicked at")
        || (trimmed.starts_with("ERROR ") && !trimmed.contains("code=ForceStop"))
}

/// Filters and renders lines, remembering which function each request id
/// belongs to (the Lambda runtime's own lines name only the request).
struct View {
    filter: Filter,
    functions: HashMap<String, String>,
}

impl View {
    fn new(filter: Filter) -> Self {
        Self { filter, functions: HashMap::new() }
    }

    /// The line as shown, or `None` when the filter hides it. `arrived` is
    /// when a followed line was read, shown dimmed for records that carry no time.
    fn render(&mut self, line: &str, arrived: Option<time::OffsetDateTime>) -> Option<String> {
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

    fn learn(&mut self, record: &mut Record) {
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

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

fn dim(text: &str) -> String {
    paint(Style::new().dimmed(), text)
}

/// An id as shown: a generated one (a UUID) by its first 8 characters, a
/// short one a caller chose (`checkout-7f3a`) whole; either works as a filter.
fn short(id: Option<&String>) -> String {
    match id {
        None => "-".repeat(8),
        Some(id) if id.chars().count() <= 16 => format!("{id:<8}"),
        Some(id) => id.chars().take(8).collect(),
    }
}

fn time_column(time: Option<&String>, arrived: Option<time::OffsetDateTime>) -> String {
    match (time, arrived) {
        (Some(time), _) => time.clone(),
        (None, Some(arrived)) => dim(&clock_of(arrived)),
        (None, None) => " ".repeat(12),
    }
}

fn render_record(record: &Record, arrived: Option<time::OffsetDateTime>) -> String {
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

fn render_metrics(
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
fn show(value: &Value) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    const HTTP: &str = r#"{"level":"INFO","message":"user registered","user_id":"01M8AJ0DZ2PCGWF923HYGQYE1Q","span":{"client_ip":"10.105.229.196","cold_start":true,"correlation_id":"cae56a5f-72f0-4c55-9ddb-06bd32189f4b","function":"register","method":"POST","path":"/api/v1/auth/register","request_id":"cae56a5f-72f0-4c55-9ddb-06bd32189f4b","trace_id":"Root=1-6b0774c3-c40e78ce5434370cc055eb32;Parent=95de2007f109e6c6;Sampled=1","name":"request"}}"#;
    const CONSUMER: &str = r#"{"timestamp":"2026-11-25T23:53:01.123456Z","level":"WARN","message":"message parked","reason":"invalid event: missing field `data`","span":{"cold_start":false,"correlation_id":"77e5a1b2-0000-4000-8000-000000000000","event_id":"01M8AJ0DZ3BQJE719JBMNZPP2B","function":"on-order-placed","message_id":"044e7f91-121d-47bd-aa0d-564b39d584d5","receive_count":"1","request_id":"d977ba6a-1fcc-4f24-bc7c-3db992272c30","name":"message"}}"#;
    const RUNTIME: &str = r#"{"level":"ERROR","message":"Lambda Runtime API returned non-200 response","status":"500 Internal Server Error","span":{"requestId":"d977ba6a-1fcc-4f24-bc7c-3db992272c30","xrayTraceId":"Root=1-6b0774ca-5f99def2c7f51820fdffcda1;Parent=4ec05b4ede20a763;Sampled=1","name":"Lambda runtime invoke"}}"#;
    const EMF: &str = r#"{"ClientErrors":0.0,"CorrelationId":"cae56a5f-72f0-4c55-9ddb-06bd32189f4b","Function":"get-health","Latency":12.733231,"Requests":1.0,"ServerErrors":0.0,"_aws":{"CloudWatchMetrics":[{"Dimensions":[["Function"]],"Metrics":[{"Name":"Requests","Unit":"Count"},{"Name":"ClientErrors","Unit":"Count"},{"Name":"ServerErrors","Unit":"Count"},{"Name":"Latency","Unit":"Milliseconds"}],"Namespace":"Shop"}],"Timestamp":1795650754287}}"#;
    const WATCH: &str =
        r#" INFO spawning function instance function="get-health" instance_id=39dd8229-ae58-43df-9517-402f769f933f"#;
    const PANIC: &str = "thread 'main' panicked at functions/login/src/main.rs:12:5:";
    const RELOAD: &str = " ERROR command killed code=ForceStop";

    fn plain(filter: Filter, lines: &[&str]) -> Vec<String> {
        let mut view = View::new(filter);
        let mut out = anstream::AutoStream::new(Vec::new(), anstream::ColorChoice::Never);
        for line in lines {
            if let Some(text) = view.render(line, None) {
                writeln!(out, "{text}").unwrap();
            }
        }
        String::from_utf8(out.into_inner()).unwrap().lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_request_record_reads_as_one_line_with_its_ids_fields_and_context() {
        let lines = plain(Filter::default(), &[HTTP]);
        assert_eq!(
            lines,
            [concat!(
                "             INFO  register         req:cae56a5f corr:cae56a5f user registered ",
                "user_id=01M8AJ0DZ2PCGWF923HYGQYE1Q cold client_ip=10.105.229.196 method=POST path=/api/v1/auth/register"
            )]
        );
    }

    #[test]
    fn a_consumer_record_shows_its_time_and_quotes_values_with_spaces() {
        let lines = plain(Filter::default(), &[CONSUMER]);
        assert_eq!(
            lines,
            [concat!(
                "23:53:01.123 WARN  on-order-placed  req:d977ba6a corr:77e5a1b2 message parked ",
                "reason=\"invalid event: missing field `data`\" ",
                "event_id=01M8AJ0DZ3BQJE719JBMNZPP2B message_id=044e7f91-121d-47bd-aa0d-564b39d584d5 receive_count=1"
            )]
        );
    }

    #[test]
    fn the_runtime_s_own_lines_get_the_function_of_their_request() {
        let lines =
            plain(Filter { functions: vec!["on-order-placed".into()], ..Filter::default() }, &[CONSUMER, RUNTIME]);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].contains("ERROR on-order-placed  req:d977ba6a corr:-------- Lambda Runtime API returned"));
    }

    #[test]
    fn filters_pick_by_request_correlation_function_and_level() {
        let all = [HTTP, CONSUMER, RUNTIME, EMF, WATCH, PANIC, RELOAD];
        let by = |filter: Filter| plain(filter, &all).len();
        assert_eq!(by(Filter::default()), 4, "records and the panic; no metrics, no watch chatter, no reload");
        assert_eq!(by(Filter { all: true, metrics: true, ..Filter::default() }), 7);
        assert_eq!(by(Filter { request_id: Some("cae56a5f".into()), ..Filter::default() }), 1);
        assert_eq!(by(Filter { request_id: Some("d977ba6a-1fcc".into()), ..Filter::default() }), 2);
        assert_eq!(by(Filter { correlation_id: Some("77e5".into()), ..Filter::default() }), 1);
        assert_eq!(by(Filter { functions: vec!["register".into(), "get-health".into()], ..Filter::default() }), 1);
        assert_eq!(by(Filter { functions: vec!["get-health".into()], metrics: true, ..Filter::default() }), 1);
        assert_eq!(by(Filter { correlation_id: Some("cae5".into()), metrics: true, ..Filter::default() }), 2);
        assert_eq!(by(Filter { level: Some(Level::Warn), ..Filter::default() }), 3, "warn, error and the panic");
        assert_eq!(by(Filter { level: Some(Level::Error), ..Filter::default() }), 2);
    }

    #[test]
    fn a_chosen_correlation_id_shows_whole_and_an_unknown_one_as_dashes() {
        let chosen = HTTP.replace(
            "\"correlation_id\":\"cae56a5f-72f0-4c55-9ddb-06bd32189f4b\"",
            "\"correlation_id\":\"checkout-7f3a\"",
        );
        let unknown =
            CONSUMER.replace("77e5a1b2-0000-4000-8000-000000000000", "").replace("01M8AJ0DZ3BQJE719JBMNZPP2B", "");
        let lines = plain(Filter::default(), &[&chosen, &unknown]);
        assert!(lines[0].contains("req:cae56a5f corr:checkout-7f3a user registered"), "{lines:?}");
        assert!(lines[1].contains("req:d977ba6a corr:-------- message parked"), "{lines:?}");
        assert!(!lines[1].contains("event_id"), "an empty span field is left out: {lines:?}");
        let by_correlation = Filter { correlation_id: Some("checkout-7f3a".into()), ..Filter::default() };
        assert_eq!(plain(by_correlation, &[&chosen, &unknown]).len(), 1);
    }

    #[test]
    fn an_emf_document_reads_as_its_metrics() {
        let lines = plain(Filter { metrics: true, ..Filter::default() }, &[EMF]);
        assert_eq!(
            lines,
            [concat!(
                "23:52:34.287 EMF   get-health       Requests=1 ClientErrors=0 ServerErrors=0 Latency=12.733231ms ",
                "CorrelationId=cae56a5f-72f0-4c55-9ddb-06bd32189f4b"
            )]
        );
    }

    #[test]
    fn watch_lines_are_dimmed_and_errors_stand_out_in_colour() {
        let mut view = View::new(Filter { all: true, ..Filter::default() });
        let watch = view.render(WATCH, None).unwrap();
        assert!(watch.starts_with("\u{1b}[2m") && watch.contains("spawning function instance"), "{watch:?}");
        let panic = view.render(PANIC, None).unwrap();
        assert!(panic.starts_with("\u{1b}[31m"), "{panic:?}");
        let record = view.render(RUNTIME, None).unwrap();
        assert!(record.contains("\u{1b}[1m\u{1b}[31mERROR"), "{record:?}");
    }

    #[test]
    fn a_followed_file_yields_complete_lines_and_notices_a_restart() {
        let dir = std::env::temp_dir().join(format!("xtask-logs-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("functions.log");
        std::fs::write(&path, "one\ntw").unwrap();
        let mut tail = Tail::open(&path).unwrap();
        assert_eq!(tail.read_lines().unwrap(), ["one"]);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"o\nthree\n").unwrap();
        assert!(!tail.restarted().unwrap());
        assert_eq!(tail.read_lines().unwrap(), ["two", "three"]);
        std::fs::write(&path, "new\n").unwrap();
        assert!(tail.restarted().unwrap());
        assert_eq!(tail.read_lines().unwrap(), ["new"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
