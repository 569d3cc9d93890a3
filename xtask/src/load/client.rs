//! One simulated client of the API: its own address (sent as
//! `X-Forwarded-For`, which the local stack trusts, so the per-client rate
//! limit counts it on its own), paced under that limit, and every request
//! timed and recorded under its route.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Which part of a run a request belongs to: only the load phase counts
/// towards throughput and the latency table; every phase counts for 5xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Setup,
    Load,
    Check,
    /// The flash sale, after the load's checks.
    Flash,
}

impl Phase {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Setup,
            1 => Self::Load,
            3 => Self::Flash,
            _ => Self::Check,
        }
    }
}

/// One request as measured.
#[derive(Clone, Debug)]
pub struct Sample {
    pub route: &'static str,
    /// 0 when no response arrived (connection error or timeout).
    pub status: u16,
    pub micros: u64,
    pub phase: Phase,
}

/// Every request of a run.
#[derive(Default)]
pub struct Recorder {
    samples: Mutex<Vec<Sample>>,
    phase: AtomicU8,
}

impl Recorder {
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    fn record(&self, route: &'static str, status: u16, elapsed: Duration) {
        let phase = Phase::from_u8(self.phase.load(Ordering::SeqCst));
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.samples.lock().unwrap_or_else(PoisonError::into_inner).push(Sample { route, status, micros, phase });
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    /// 0 when no response arrived; `body` then holds the error.
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }

    /// A short description for reports: status, error code.
    pub fn describe(&self) -> String {
        if self.status == 0 {
            return format!("no response ({})", String::from_utf8_lossy(&self.body));
        }
        let code = self.error_code();
        if code.is_empty() { self.status.to_string() } else { format!("{} {code}", self.status) }
    }
}

/// A request to send.
pub struct Req {
    route: &'static str,
    method: Method,
    path: String,
    token: Option<String>,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    paced: bool,
}

impl Req {
    pub fn new(method: Method, route: &'static str, path: impl Into<String>) -> Self {
        Self { route, method, path: path.into(), token: None, body: None, headers: Vec::new(), paced: true }
    }

    pub fn get(route: &'static str, path: impl Into<String>) -> Self {
        Self::new(Method::GET, route, path)
    }

    pub fn post(route: &'static str, path: impl Into<String>) -> Self {
        Self::new(Method::POST, route, path)
    }

    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// The body exactly as given (a retry must send the same bytes).
    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.as_bytes().to_vec());
        self
    }

    pub fn json(self, body: &Value) -> Self {
        self.body(&body.to_string())
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sent at once, outside the pace (a client's duplicate in flight).
    pub fn unpaced(mut self) -> Self {
        self.paced = false;
        self
    }
}

/// Where a client's requests say they come from.
enum Address {
    Fixed(String),
    /// A new address every `every` requests (an operator's checks, which
    /// are not a customer and must not be throttled as one).
    Rotating {
        base: [u8; 2],
        every: u32,
        sent: AtomicU32,
    },
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    address: Address,
    /// The minimum time between two requests; `None`: unpaced.
    pace: Option<Duration>,
    next_slot: Mutex<Instant>,
    recorder: Arc<Recorder>,
}

impl Client {
    /// A client with one address, at most `per_minute` requests a minute.
    pub fn paced(
        http: reqwest::Client,
        api_url: &str,
        address: String,
        per_minute: u32,
        recorder: Arc<Recorder>,
    ) -> Self {
        Self {
            http,
            base: format!("{api_url}/api/v1"),
            address: Address::Fixed(address),
            pace: Some(Duration::from_secs_f64(60.0 / f64::from(per_minute.max(1)))),
            next_slot: Mutex::new(Instant::now()),
            recorder,
        }
    }

    /// An unpaced client whose address changes every `every` requests, taken
    /// from `198.<base[0]>.<base[1]>.*` onwards.
    pub fn rotating(http: reqwest::Client, api_url: &str, base: [u8; 2], every: u32, recorder: Arc<Recorder>) -> Self {
        Self {
            http,
            base: format!("{api_url}/api/v1"),
            address: Address::Rotating { base, every: every.max(1), sent: AtomicU32::new(0) },
            pace: None,
            next_slot: Mutex::new(Instant::now()),
            recorder,
        }
    }

    fn address(&self) -> String {
        match &self.address {
            Address::Fixed(address) => address.clone(),
            Address::Rotating { base, every, sent } => {
                let n = sent.fetch_add(1, Ordering::Relaxed) / every;
                format!("198.{}.{}.{}", base[0], base[1].wrapping_add((n / 250) as u8), n % 250 + 1)
            }
        }
    }

    /// Waits for this client's next slot under its pace.
    async fn wait_turn(&self) {
        let Some(pace) = self.pace else { return };
        let slot = {
            let mut next = self.next_slot.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = (*next).max(Instant::now());
            *next = slot + pace;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }

    pub async fn send(&self, req: Req) -> Answer {
        if req.paced {
            self.wait_turn().await;
        }
        let mut request = self
            .http
            .request(req.method, format!("{}{}", self.base, req.path))
            .header("x-forwarded-for", self.address())
            .timeout(Duration::from_secs(60));
        if let Some(token) = &req.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = req.body {
            request = request.header("content-type", "application/json").body(body);
        }
        for (name, value) in req.headers {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                match response.bytes().await {
                    Ok(body) => Answer { status, headers, body: body.to_vec() },
                    Err(error) => Answer { status: 0, headers, body: error.to_string().into_bytes() },
                }
            }
            Err(error) => Answer { status: 0, headers: HeaderMap::new(), body: error.to_string().into_bytes() },
        };
        self.recorder.record(req.route, answer.status, started.elapsed());
        answer
    }
}
