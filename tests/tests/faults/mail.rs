//! SES failing: an email task is retried, then parked by the redrive policy.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use local_cloud::eventsource::{QueueMapping, deliver_one_batch};
use local_cloud::faults::Fault;
use serde_json::json;
use tokio::sync::Mutex;

use crate::harness::{TIMEOUT, proxy, start};
use crate::helpers::{cloud_event, emails_to, sqs, unique_email};

#[tokio::test]
async fn while_ses_fails_an_email_task_is_retried_and_lands_in_the_dead_letter_queue_after_the_redrive_limit() {
    // A queue pair of this test's own, with the template's redrive limit and
    // a short visibility timeout, so the retries take seconds, not minutes.
    let sqs = sqs().await;
    let name = format!("mail-outage-{}", ulid::Ulid::new());
    let dead =
        sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.unwrap().queue_url().unwrap().to_owned();
    let dead_arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}-dlq");
    let redrive = json!({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 5}).to_string();
    let queue = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let to = unique_email("ses-outage");
    let marker = ulid::Ulid::new().to_string();
    let task = cloud_event(
        "email-send",
        &marker,
        json!({"to": to, "template": "welcome", "dedupe_key": format!("welcome#{marker}")}),
    );
    sqs.send_message().queue_url(&queue).message_body(&task).send().await.unwrap();

    let ses = proxy("AWS_ENDPOINT_URL_SESV2").await;
    ses.set(Fault::ServerError);
    let mut sender = start("send-email", &[("AWS_ENDPOINT_URL_SESV2", ses.url())]).await;
    sender.ready(Duration::from_secs(30)).await.unwrap();
    let sender = Mutex::new(sender);
    let mapping = QueueMapping {
        function: "send-email".into(),
        queue_url: queue.clone(),
        queue_arn: format!("arn:aws:sqs:us-east-1:123456789012:{name}"),
        batch_size: 10,
        report_batch_item_failures: true,
        function_timeout: TIMEOUT,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut deliveries = 0;
    loop {
        deliveries += deliver_one_batch(&mapping, &sqs, &sender).await.unwrap();
        let parked = local_cloud::dlq::peek(&sqs, &dead).await.unwrap();
        if parked.iter().any(|letter| letter.body.contains(&marker)) {
            break;
        }
        assert!(Instant::now() < deadline, "not parked after {deliveries} deliveries");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(deliveries >= 5, "retried up to the redrive limit first ({deliveries} deliveries)");
    assert!(ses.requests() >= 5, "each delivery tried SES");
    assert!(emails_to(&to, 1, Duration::from_millis(500)).await.is_empty(), "nothing was sent");
}
