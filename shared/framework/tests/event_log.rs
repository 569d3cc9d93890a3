//! The opt-in event log (`LOG_EVENT=true`) over bodies that hold a
//! password: an API request through `HttpServer::handle`, a queue record
//! through the batch processor. Whatever shape the body has (a JSON object
//! cut short or followed by other bytes, JSON double-encoded in a string,
//! form data, plain text) and whatever surrounds it, no line they log shows
//! the password: a body that is not a JSON object or array is logged as its
//! length and content type only.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use framework::Settings;
use framework::batch::{BatchProcessor, RecordError};
use framework::budget::Budget;
use framework::events::CloudEvent;
use framework::http::{Access, ApiError, ApiRequest, ApiResponse, HttpServer};
use framework::telemetry;
use in_memory::Memory;
use lambda_http::{Body, Request, RequestExt, Response};
use proptest::prelude::*;
use proptest::test_runner::RngAlgorithm;
use serde_json::{Value, json};

/// `PROPTEST_CASES` if set (the long run of `cargo xtask fuzz-parsers`), else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, rng_algorithm: RngAlgorithm::XorShift, ..ProptestConfig::default() }
}

/// Everything logged while `work` runs on this thread, as written.
fn logged(work: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    telemetry::set_event_log(true);
    tracing::subscriber::with_default(subscriber, work);
    String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned()
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
}

/// A password (no character JSON or a form would escape, so it would show
/// as it is), and a body holding it.
#[derive(Debug, Clone)]
struct Case {
    password: String,
    body: String,
    content_type: &'static str,
}

/// A login document holding `password`, its fields in either order.
fn credentials(password: &str, email_first: bool) -> String {
    if email_first {
        format!(r#"{{"email":"ada@example.com","password":"{password}"}}"#)
    } else {
        format!(r#"{{"password":"{password}","email":"ada@example.com"}}"#)
    }
}

fn case() -> impl Strategy<Value = Case> {
    let password = "[A-Za-z0-9._~-]{10,24}";
    let around = || any::<String>();
    (password, any::<bool>(), 0..5_u8, around(), around(), around(), any::<prop::sample::Index>()).prop_map(
        |(password, email_first, shape, before, after, inside, cut)| {
            let document = credentials(&password, email_first);
            let (shaped, content_type) = match shape {
                // Cut short somewhere after the password.
                0 => {
                    let end = document.find(&password).unwrap() + password.len();
                    (document[..end + cut.index(document.len() - 1 - end)].to_owned(), "application/json")
                }
                // Followed by other bytes.
                1 => (format!("{document}{inside}"), "application/json"),
                // Double-encoded: a JSON string that holds the document.
                2 => (Value::String(document).to_string(), "application/json"),
                // A form.
                3 => (
                    if email_first {
                        format!("email=ada%40example.com&password={password}")
                    } else {
                        format!("password={password}&email=ada%40example.com")
                    },
                    "application/x-www-form-urlencoded",
                ),
                // Plain text.
                _ => (format!("my password is {password}, {inside}"), "text/plain"),
            };
            Case { body: format!("{before}{shaped}{after}"), password, content_type }
        },
    )
}

/// The login route's sample event, carrying `case`'s body.
fn request(case: &Case) -> Request {
    let mut event: Value = serde_json::from_str(include_str!("../../../events/login.json")).unwrap();
    event["body"] = case.body.clone().into();
    event["isBase64Encoded"] = false.into();
    for headers in ["headers", "multiValueHeaders"] {
        if let Some(headers) = event[headers].as_object_mut() {
            headers.retain(|name, _| !name.eq_ignore_ascii_case("content-type"));
        }
    }
    event["headers"]["content-type"] = case.content_type.into();
    if event.get("multiValueHeaders").is_some_and(Value::is_object) {
        event["multiValueHeaders"]["content-type"] = json!([case.content_type]);
    }
    let mut context = lambda_http::Context::default();
    context.request_id = "event-log-request".into();
    lambda_http::request::from_str(&event.to_string()).unwrap().with_lambda_context(context)
}

/// What the login handler does first: read the body as credentials.
async fn login(request: ApiRequest) -> Result<ApiResponse, ApiError> {
    #[derive(serde::Deserialize)]
    struct Credentials {
        email: String,
        password: String,
    }
    let credentials: Credentials = request.json()?;
    Ok(ApiResponse::ok(json!({"filled": !credentials.email.is_empty() && !credentials.password.is_empty()})))
}

fn serve(request: Request) -> Response<Body> {
    let settings = Settings::from_lookup(|name| (name == "TABLE_NAME").then(|| "t".to_owned())).unwrap();
    let server = HttpServer::new("event-log", Access::Guest, &settings);
    RUNTIME.with(|runtime| runtime.block_on(server.handle(request, &login)))
}

/// One SQS record carrying `body` through a consumer.
fn consume(body: &str) {
    let memory = Memory::new();
    let budget = Budget::new(Duration::from_secs(10));
    let processor = BatchProcessor::new(
        "event-log",
        "user-created",
        budget,
        Arc::new(memory.dead_letters()),
        Arc::new(memory.message_claims(budget.claim_duration())),
    );
    let mut message = SqsMessage::default();
    message.message_id = Some("message-1".into());
    message.body = Some(body.to_owned());
    let mut event = SqsEvent::default();
    event.records = vec![message];
    let handler = |_: CloudEvent| async { Ok::<(), RecordError>(()) };
    RUNTIME.with(|runtime| {
        runtime.block_on(processor.process(event, &handler, Instant::now() + Duration::from_secs(5)));
    });
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_request_body_never_logs_its_password(case in case()) {
        let lines = logged(|| {
            serve(request(&case));
        });
        prop_assert!(lines.contains("invocation event"), "the event was logged: {lines}");
        prop_assert!(!lines.contains(&case.password), "{case:?} leaked: {lines}");
    }

    #[test]
    fn a_queue_record_body_never_logs_its_password(case in case()) {
        let lines = logged(|| consume(&case.body));
        prop_assert!(lines.contains("invocation event"), "the event was logged: {lines}");
        prop_assert!(!lines.contains(&case.password), "{case:?} leaked: {lines}");
    }
}
