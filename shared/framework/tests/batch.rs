//! The batch processor on in-memory claims and dead letters: what happens to
//! a message when its handler hangs, is killed, fails, or finds it poison.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use framework::batch::{BatchProcessor, RecordError};
use framework::budget::Budget;
use framework::events::CloudEvent;
use in_memory::{Dependency, Memory};

const TIMEOUT: Duration = Duration::from_secs(2);

fn processor(memory: &Memory) -> BatchProcessor {
    let budget = Budget::new(TIMEOUT);
    BatchProcessor::new(
        "test-consumer",
        "user-created",
        budget,
        Arc::new(memory.dead_letters()),
        Arc::new(memory.message_claims(budget.claim_duration())),
    )
}

fn message(event_id: &str) -> SqsMessage {
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
    message
}

fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages;
    event
}

fn failed(response: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<String> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_millis(300)
}

/// Regression: a message whose claim was still held (its first
/// attempt timed out or was killed, claim not expired) was acknowledged as a
/// duplicate and deleted: the effect never happened.
#[tokio::test]
async fn a_message_whose_attempt_hung_is_retried_until_its_effect_happens_once() {
    let memory = Memory::new();
    let processor = processor(&memory);
    let attempts = AtomicUsize::new(0);
    let effects = AtomicUsize::new(0);
    let handler = |_event: CloudEvent| async {
        if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await; // the first attempt never finishes
        }
        effects.fetch_add(1, Ordering::SeqCst);
        Ok::<(), RecordError>(())
    };

    let first = processor.process(batch(vec![message("e1")]), &handler, soon()).await;
    assert_eq!(failed(&first), ["message-e1"], "a record cut off by the deadline goes back to the queue");

    let early = processor.process(batch(vec![message("e1")]), &handler, soon()).await;
    assert_eq!(failed(&early), ["message-e1"], "while the claim is held it is retried, never dropped as a duplicate");
    assert_eq!(effects.load(Ordering::SeqCst), 0);

    memory.advance(Budget::new(TIMEOUT).claim_duration() + Duration::from_secs(1));
    let redelivered = processor.process(batch(vec![message("e1")]), &handler, soon()).await;
    assert!(failed(&redelivered).is_empty());
    let duplicate = processor.process(batch(vec![message("e1")]), &handler, soon()).await;
    assert!(failed(&duplicate).is_empty());
    assert_eq!(effects.load(Ordering::SeqCst), 1, "the effect happened exactly once");
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_nothing() {
    let memory = Memory::new();
    let processor = processor(&memory);
    let effects = &AtomicUsize::new(0);
    let calls = &AtomicUsize::new(0);
    let handler = |event: CloudEvent| async move {
        // In the first batch the second record is still running when the process dies.
        if event.id == "k2" && calls.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        effects.fetch_add(1, Ordering::SeqCst);
        Ok::<(), RecordError>(())
    };
    let records = || batch(vec![message("k1"), message("k2"), message("k3")]);
    let killed = tokio::time::timeout(Duration::from_millis(100), processor.process(records(), &handler, soon())).await;
    assert!(killed.is_err(), "the invocation was killed before it could answer");
    assert_eq!(effects.load(Ordering::SeqCst), 2, "k1 and k3 finished");

    // SQS redelivers the whole batch after the visibility timeout (longer than a claim holds).
    memory.advance(Duration::from_secs(60));
    let redelivered = processor.process(records(), &handler, soon()).await;
    assert!(failed(&redelivered).is_empty());
    assert_eq!(effects.load(Ordering::SeqCst), 3, "each record's effect exactly once");
}

/// Regression: a poison message was marked done before it was
/// parked: when parking failed it was later dropped as a duplicate, and a
/// redriven message was dropped instead of processed.
#[tokio::test]
async fn a_poison_message_is_parked_before_anything_is_marked_and_a_redrive_runs_it_again() {
    let memory = Memory::new();
    let processor = processor(&memory);
    let calls = AtomicUsize::new(0);
    let handler = |_event: CloudEvent| async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(RecordError::Poison("the order does not exist".into()))
    };

    memory.set_down(Dependency::Queues, true);
    let unparked = processor.process(batch(vec![message("p1")]), &handler, soon()).await;
    assert_eq!(failed(&unparked), ["message-p1"], "not parked, so retried");
    memory.set_down(Dependency::Queues, false);

    let parked = processor.process(batch(vec![message("p1")]), &handler, soon()).await;
    assert!(failed(&parked).is_empty());
    assert_eq!(memory.parked().len(), 1);
    assert!(memory.parked()[0].1.contains("the order does not exist"));

    // `cargo xtask dlq redrive` puts it back on its queue: it is handled again.
    let redriven = processor.process(batch(vec![message("p1")]), &handler, soon()).await;
    assert!(failed(&redriven).is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 3, "every delivery ran the handler; none was taken for a duplicate");
    assert_eq!(memory.parked().len(), 2);
}

/// Regression: a handler waiting on a hung dependency ran into
/// Lambda's timeout; now the record is reported failed before the deadline.
#[tokio::test]
async fn a_hung_record_is_reported_failed_before_the_deadline() {
    let memory = Memory::new();
    let processor = processor(&memory);
    let handler = |event: CloudEvent| async move {
        if event.id.as_str() == "slow" {
            std::future::pending::<()>().await;
        }
        Ok::<(), RecordError>(())
    };
    let started = Instant::now();
    let deadline = processor.deadline(Some(started + TIMEOUT));
    let response = processor.process(batch(vec![message("fast"), message("slow")]), &handler, deadline).await;
    assert_eq!(failed(&response), ["message-slow"]);
    let took = started.elapsed();
    assert!(
        took < TIMEOUT.checked_sub(Duration::from_millis(500)).unwrap(),
        "answered after {took:?} of a {TIMEOUT:?} timeout"
    );
}

#[tokio::test]
async fn malformed_and_mistyped_messages_are_parked_with_their_reason() {
    let memory = Memory::new();
    let processor = processor(&memory);
    let handler = |_event: CloudEvent| async { Ok::<(), RecordError>(()) };
    let mut garbage = SqsMessage::default();
    garbage.message_id = Some("garbage".into());
    garbage.body = Some("not json".into());
    let mut wrong = message("w1");
    wrong.body = Some(wrong.body.unwrap().replace("user-created", "order-placed"));
    let response = processor.process(batch(vec![garbage, wrong, message("ok")]), &handler, soon()).await;
    assert!(failed(&response).is_empty());
    let reasons: Vec<String> = memory.parked().into_iter().map(|(_, reason)| reason).collect();
    assert!(reasons.iter().any(|r| r.contains("not a CloudEvents")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("expected event type")), "{reasons:?}");
}

/// A panic in one record's handler fails that record only: the others are
/// done, the panicking one goes back to the queue with its claim released,
/// and its redelivery runs (it is not taken for a duplicate).
#[tokio::test]
async fn a_panic_in_one_record_fails_that_record_only_and_its_redelivery_runs() {
    let memory = Memory::new();
    let processor = processor(&memory);
    let effects = std::sync::Mutex::new(Vec::new());
    let panicking = std::sync::atomic::AtomicBool::new(true);
    let (effects_ref, panicking_ref) = (&effects, &panicking);
    let handler = |event: CloudEvent| async move {
        // A bug in the handler, on the first delivery only.
        assert!(!(event.id == "bad" && panicking_ref.load(Ordering::SeqCst)), "a bug in the handler");
        effects_ref.lock().unwrap().push(event.id.clone());
        Ok::<(), RecordError>(())
    };
    let first = processor.process(batch(vec![message("a"), message("bad"), message("c")]), &handler, soon()).await;
    assert_eq!(failed(&first), ["message-bad"]);
    let mut done = effects.lock().unwrap().clone();
    done.sort();
    assert_eq!(done, ["a", "c"]);
    assert!(memory.parked().is_empty(), "a panic is a bug to retry, not a poison message");

    panicking.store(false, Ordering::SeqCst);
    let again = processor.process(batch(vec![message("bad")]), &handler, soon()).await;
    assert!(failed(&again).is_empty());
    assert_eq!(effects.lock().unwrap().iter().filter(|id| *id == "bad").count(), 1);
}
