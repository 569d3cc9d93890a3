//! A fault proxy: stands between a function and one AWS endpoint of the local
//! cloud and, on command, passes requests through, delays them, answers
//! with a throttling or server error, refuses or drops them (a black hole:
//! the connection is accepted and never answered). Tests put one in front of
//! a single function's endpoint; `cargo xtask dev --faults` puts one in front
//! of each service, controlled over HTTP.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A fault, applied to the requests it matches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rule {
    #[serde(flatten)]
    pub fault: Fault,
    /// Only requests for this operation (the `X-Amz-Target` suffix, such as
    /// `TransactWriteItems`); every request when `None`.
    #[serde(default)]
    pub only: Option<String>,
    /// Only the next this many matching requests; then the proxy passes again.
    #[serde(default)]
    pub times: Option<u64>,
}

impl Rule {
    pub fn always(fault: Fault) -> Self {
        Self { fault, only: None, times: None }
    }

    /// Applies to `operation` only.
    pub fn only(mut self, operation: &str) -> Self {
        self.only = Some(operation.to_owned());
        self
    }

    /// Applies to the next `count` matching requests only.
    pub fn times(mut self, count: u64) -> Self {
        self.times = Some(count);
        self
    }
}

/// What the proxy does with a request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Fault {
    /// Forward to the endpoint.
    Pass,
    /// Forward after a delay.
    Delay { millis: u64 },
    /// Accept and never answer.
    BlackHole,
    /// Forward, let the call take effect, and never answer: a write that
    /// commits while its caller times out (the response lost on the way back).
    LoseResponse,
    /// Answer 400 with the service's throttling error (the SDK retries it).
    Throttle,
    /// Answer 500 with an internal error (the SDK retries it).
    ServerError,
    /// Cancel a `TransactWriteItems` as DynamoDB does when another
    /// transaction on the same items is in flight (`TransactionConflict` on
    /// its first item); the SDK does not retry it, the store does.
    TransactionConflict,
}

/// Controls the proxy at this path (any method): a JSON `Rule` body (such
/// as `{"mode":"throttle","only":"TransactWriteItems","times":2}`) sets it;
/// the proxy answers with the rule it now has.
pub const CONTROL_PATH: &str = "/__fault";

pub struct FaultProxy {
    pub address: SocketAddr,
    rule: Arc<Mutex<Rule>>,
    requests: Arc<Mutex<u64>>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy on a free port in front of `upstream` (`http://host:port`), passing everything.
    pub async fn start(upstream: String) -> anyhow::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, upstream)
    }

    pub fn start_on(listener: TcpListener, upstream: String) -> anyhow::Result<Self> {
        let address = listener.local_addr()?;
        let rule = Arc::new(Mutex::new(Rule::always(Fault::Pass)));
        let requests = Arc::new(Mutex::new(0));
        let http = reqwest::Client::builder().build()?;
        let shared = (rule.clone(), requests.clone(), Arc::new(upstream), http);
        let task = tokio::spawn(crate::serve::http(listener, move |request, _peer| {
            let (rule, requests, upstream, http) = shared.clone();
            async move { Ok::<_, Infallible>(answer(request, &rule, &requests, &upstream, &http).await) }
        }));
        Ok(Self { address, rule, requests, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Applies `fault` to every request from now on.
    pub fn set(&self, fault: Fault) {
        self.set_rule(Rule::always(fault));
    }

    pub fn set_rule(&self, rule: Rule) {
        *self.rule.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = rule;
    }

    /// Requests that reached the proxy (control requests excluded).
    pub fn requests(&self) -> u64 {
        *self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn answer(
    request: Request<Incoming>,
    rule: &Mutex<Rule>,
    requests: &Mutex<u64>,
    upstream: &str,
    http: &reqwest::Client,
) -> Response<Full<Bytes>> {
    if request.uri().path() == CONTROL_PATH {
        return control(request, rule).await;
    }
    *requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|target| target.to_str().ok())
        .and_then(|target| target.rsplit('.').next())
        .map(str::to_owned);
    let fault = applicable(rule, operation.as_deref());
    match fault {
        Fault::Pass => forward(request, upstream, http).await,
        Fault::Delay { millis } => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            forward(request, upstream, http).await
        }
        Fault::BlackHole => std::future::pending().await,
        Fault::LoseResponse => {
            // Its own task: the call completes even when the caller hangs up first.
            let upstream = upstream.to_owned();
            let http = http.clone();
            let _ = tokio::spawn(async move { forward(request, &upstream, &http).await }).await;
            std::future::pending().await
        }
        Fault::Throttle => aws_error(StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded (injected)"),
        Fault::ServerError => aws_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "injected server error"),
        Fault::TransactionConflict => transaction_conflict(request).await,
    }
}

/// The fault for a request for `operation`, counting it against the rule's `times`.
fn applicable(rule: &Mutex<Rule>, operation: Option<&str>) -> Fault {
    let mut rule = rule.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if rule.only.as_deref().is_some_and(|only| operation != Some(only)) {
        return Fault::Pass;
    }
    match &mut rule.times {
        Some(0) => Fault::Pass,
        Some(left) => {
            *left -= 1;
            rule.fault.clone()
        }
        None => rule.fault.clone(),
    }
}

async fn control(request: Request<Incoming>, rule: &Mutex<Rule>) -> Response<Full<Bytes>> {
    let body = request.into_body().collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
    if !body.is_empty() {
        match serde_json::from_slice::<Rule>(&body) {
            Ok(new) => *rule.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = new,
            Err(error) => {
                let mut response = Response::new(Full::new(Bytes::from(format!("bad fault: {error}\n"))));
                *response.status_mut() = StatusCode::BAD_REQUEST;
                return response;
            }
        }
    }
    let now = rule.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    Response::new(Full::new(Bytes::from(format!("{now:?}\n"))))
}

/// An error as AWS's JSON protocols answer it (DynamoDB, SQS, Secrets Manager).
fn aws_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"__type": code, "message": message}).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.0"));
    if let Ok(value) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", value);
    }
    response
}

/// DynamoDB's answer to a transaction that met another one in flight: one
/// cancellation reason per item, `TransactionConflict` on the first.
async fn transaction_conflict(request: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = request.into_body().collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
    let items = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|body| body["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(1);
    let reasons: Vec<serde_json::Value> = (0..items.max(1))
        .map(|i| {
            if i == 0 {
                serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item (injected)"})
            } else {
                serde_json::json!({"Code": "None"})
            }
        })
        .collect();
    let code = "com.amazonaws.dynamodb.v20120810#TransactionCanceledException";
    let body = serde_json::json!({
        "__type": code,
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
        "CancellationReasons": reasons,
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.0"));
    response
}

async fn forward(request: Request<Incoming>, upstream: &str, http: &reqwest::Client) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = http.request(parts.method, format!("{upstream}{path}")).body(body);
    for (name, value) in &parts.headers {
        // The SDK signed its request for the proxy's host; the local cloud does not check signatures.
        if !matches!(name.as_str(), "host" | "content-length" | "connection" | "transfer-encoding") {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = Response::new(Full::new(bytes));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if !matches!(name.as_str(), "content-length" | "connection" | "transfer-encoding") {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(error) => aws_error(
            StatusCode::BAD_GATEWAY,
            "ServiceUnavailable",
            &format!("proxy could not reach the endpoint: {error}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_to_their_operation_and_count() {
        let rule = Mutex::new(Rule::always(Fault::Throttle).only("TransactWriteItems").times(2));
        assert_eq!(applicable(&rule, Some("GetItem")), Fault::Pass);
        assert_eq!(applicable(&rule, Some("TransactWriteItems")), Fault::Throttle);
        assert_eq!(applicable(&rule, Some("TransactWriteItems")), Fault::Throttle);
        assert_eq!(applicable(&rule, Some("TransactWriteItems")), Fault::Pass);
        let parsed: Rule = serde_json::from_str(r#"{"mode":"delay","millis":50}"#).unwrap();
        assert_eq!(parsed, Rule::always(Fault::Delay { millis: 50 }));
    }
}
