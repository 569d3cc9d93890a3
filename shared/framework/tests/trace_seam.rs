//! The trace seam end to end, with a recording exporter installed as a
//! function installs one at init: a request's spans join the trace Lambda
//! gave it, with the route's template, outcome and cold start; each queue
//! record's spans join the trace its `AWSTraceHeader` carries (the one the
//! outbox kept from the request that caused it), not the invocation's; and
//! every invocation ends with a flush.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use framework::Settings;
use framework::batch::BatchProcessor;
use framework::budget::Budget;
use framework::events::CloudEvent;
use framework::http::{Access, ApiError, ApiRequest, ApiResponse, HttpServer};
use framework::trace::{Call, Exporter, Work};
use lambda_http::RequestExt;

const REQUEST_TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const RECORD_A: &str = "Root=1-6759e988-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=aaaaaaaaaaaaaaaa;Sampled=1";
const RECORD_B: &str = "Root=1-6759e988-bbbbbbbbbbbbbbbbbbbbbbbb;Parent=bbbbbbbbbbbbbbbb;Sampled=1";

/// What the exporter was given, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Span {
    Call { trace: String, operation: String },
    Work { trace: String, route: String, outcome: String, cold_start: bool },
    Flush,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Span>>>);

impl Exporter for Recorder {
    fn call(&self, trace: &str, call: &Call<'_>) {
        self.0.lock().unwrap().push(Span::Call { trace: trace.into(), operation: call.operation.into() });
    }

    fn work(&self, trace: &str, work: &Work<'_>) {
        self.0.lock().unwrap().push(Span::Work {
            trace: trace.into(),
            route: work.route.into(),
            outcome: work.outcome.into(),
            cold_start: work.cold_start,
        });
    }

    fn flush(&self) {
        self.0.lock().unwrap().push(Span::Flush);
    }
}

/// What an SDK call does through the call timer, made by hand.
fn sdk_call(operation: &str) {
    framework::trace::call(&Call {
        service: "DynamoDB",
        operation,
        outcome: "ok",
        attempts: 1,
        started: SystemTime::now(),
        took: Duration::from_millis(1),
    });
}

fn record(event_id: &str, trace: &str) -> SqsMessage {
    let event = CloudEvent::new(
        "urn:test",
        event_id.into(),
        "user-created",
        "corr",
        time::OffsetDateTime::now_utc(),
        serde_json::json!({}),
    );
    let mut message = SqsMessage::default();
    message.message_id = Some(format!("message-{event_id}"));
    message.body = Some(serde_json::to_string(&event).unwrap());
    message.attributes.insert("AWSTraceHeader".into(), trace.into());
    message
}

/// One test, because the exporter is the process's (installed once, as at init).
#[tokio::test]
async fn requests_and_records_report_their_spans_in_their_own_traces_and_each_invocation_flushes() {
    let recorder = Recorder::default();
    assert!(framework::trace::install(Box::new(recorder.clone())));

    // A request: its call and itself in the trace Lambda gave it.
    let settings = Settings::from_lookup(|name| (name == "TABLE_NAME").then(|| "table".to_owned())).unwrap();
    let server = HttpServer::new("get-product", Access::Guest, &settings);
    let mut context = lambda_http::Context::default();
    context.request_id = "trace-seam".into();
    context.xray_trace_id = Some(REQUEST_TRACE.into());
    let request = lambda_http::request::from_str(include_str!("../../../events/get-product.json"))
        .unwrap()
        .with_lambda_context(context);
    let handler = |_: ApiRequest| async {
        sdk_call("GetItem");
        Ok::<_, ApiError>(ApiResponse::ok(serde_json::json!({})))
    };
    let response = server.handle(request, &handler).await;
    assert_eq!(response.status(), 200);
    let spans = std::mem::take(&mut *recorder.0.lock().unwrap());
    assert_eq!(
        spans,
        [
            Span::Call { trace: REQUEST_TRACE.into(), operation: "GetItem".into() },
            Span::Work {
                trace: REQUEST_TRACE.into(),
                route: "GET /api/v1/products/{id}".into(),
                outcome: "2xx".into(),
                cold_start: true
            },
            Span::Flush,
        ]
    );

    // A batch: each record in the trace it carried, then one flush.
    let memory = in_memory::Memory::new();
    let budget = Budget::new(Duration::from_secs(2));
    let processor = BatchProcessor::new(
        "on-user-created",
        "user-created",
        budget,
        Arc::new(memory.dead_letters()),
        Arc::new(memory.message_claims(budget.claim_duration())),
    )
    .concurrency(2);
    let mut batch = SqsEvent::default();
    batch.records =
        vec![record("01J9Z3NDEKTSV4RRFFQ69G5FAA", RECORD_A), record("01J9Z3NDEKTSV4RRFFQ69G5FAB", RECORD_B)];
    let handler = |event: CloudEvent| async move {
        // Both records in flight at once: each call must still find its own trace.
        tokio::time::sleep(Duration::from_millis(5)).await;
        sdk_call(&format!("PutItem-{}", event.id));
        Ok(())
    };
    let response = processor.process(batch, &handler, Instant::now() + Duration::from_secs(1)).await;
    assert!(response.batch_item_failures.is_empty());
    let spans = std::mem::take(&mut *recorder.0.lock().unwrap());
    for (trace, id) in [(RECORD_A, "01J9Z3NDEKTSV4RRFFQ69G5FAA"), (RECORD_B, "01J9Z3NDEKTSV4RRFFQ69G5FAB")] {
        assert!(spans.contains(&Span::Call { trace: trace.into(), operation: format!("PutItem-{id}") }), "{spans:?}");
        assert!(
            spans.contains(&Span::Work {
                trace: trace.into(),
                route: "user-created".into(),
                outcome: "done".into(),
                cold_start: false
            }),
            "{spans:?}"
        );
    }
    assert_eq!(spans.len(), 5, "{spans:?}");
    assert_eq!(spans.last(), Some(&Span::Flush));
}
