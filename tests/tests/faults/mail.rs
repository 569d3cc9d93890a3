//! SES failing: an email task is retried, then parked by the redrive policy.

use std::time::{Duration, Instant};

use local_cloud::eventsource::deliver_one_batch;
use local_cloud::faults::Fault;
use serde_json::json;
use tokio::sync::Mutex;

use crate::harness::{proxy, start};
use crate::helpers::{cloud_event, emails_to, sqs, unique_email};
use crate::queued_work::{OwnQueue, REDRIVE_LIMIT};

#[tokio::test]
async fn while_ses_fails_an_email_task_is_retried_and_lands_in_the_dead_letter_queue_after_the_redrive_limit() {
    // A queue pair of this test's own, with the template's redrive limit and
    // a short visibility timeout, so the retries take seconds, not minutes.
    let sqs = sqs().await;
    let queue = OwnQueue::create(&sqs, "mail-outage").await;
    let to = unique_email("ses-outage");
    let marker = ulid::Ulid::new().to_string();
    let task = cloud_event(
        "email-send",
        &marker,
        json!({"to": to, "template": "welcome", "dedupe_key": format!("welcome#{marker}")}),
    );
    sqs.send_message().queue_url(&queue.url).message_body(&task).send().await.unwrap();

    let ses = proxy("AWS_ENDPOINT_URL_SESV2").await;
    ses.set(Fault::ServerError);
    let mut sender = start("send-email", &[("AWS_ENDPOINT_URL_SESV2", ses.url())]).await;
    sender.ready(Duration::from_secs(30)).await.unwrap();
    let sender = Mutex::new(sender);
    let mapping = queue.send_email_mapping();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut deliveries = 0;
    loop {
        deliveries += deliver_one_batch(&mapping, &sqs, &sender).await.unwrap();
        let parked = local_cloud::dlq::peek(&sqs, &queue.dead_letter_url).await.unwrap();
        if parked.iter().any(|letter| letter.body.contains(&marker)) {
            break;
        }
        assert!(Instant::now() < deadline, "not parked after {deliveries} deliveries");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        deliveries >= usize::from(REDRIVE_LIMIT),
        "retried up to the redrive limit first ({deliveries} deliveries)"
    );
    assert!(ses.requests() >= u64::from(REDRIVE_LIMIT), "each delivery tried SES");
    assert!(emails_to(&to, 1, Duration::from_millis(500)).await.is_empty(), "nothing was sent");
}
