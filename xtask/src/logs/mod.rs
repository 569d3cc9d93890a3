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

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use anyhow::Context;
use local_cloud::local_dir;
use serde_json::{Map, Value};

mod view;

use view::{View, dim};

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

#[cfg(test)]
mod tests;
