//! What `cargo xtask dlq` reads and does on the local cloud, against moto:
//! a queue's depth, dead letters with their reason and age, the local
//! redrive (receive, send, delete), and the message-move task's absence here.

use aws_sdk_sqs::types::MessageAttributeValue;

fn text(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().unwrap()
}

/// A fresh source queue and dead-letter queue of this test's own.
async fn pair(sqs: &aws_sdk_sqs::Client) -> (String, String) {
    let name = format!("dlq-test-{}", ulid::Ulid::new());
    let create = |name: String| async move {
        sqs.create_queue().queue_name(name).send().await.unwrap().queue_url().unwrap().to_owned()
    };
    (create(name.clone()).await, create(format!("{name}-dlq")).await)
}

#[tokio::test]
async fn depth_peek_and_the_local_redrive_on_the_local_cloud() {
    tests::helpers::require_local_cloud();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (queue, dead) = pair(&sqs).await;
    let before = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 1000;

    for (body, reason) in [("{\"poison\":1}", Some("not a CloudEvents 1.0 JSON event")), ("{\"tired\":2}", None)] {
        let mut send =
            sqs.send_message().queue_url(&dead).message_body(body).message_attributes("kind", text("order-placed"));
        if let Some(reason) = reason {
            send = send
                .message_attributes("dead_letter_reason", text(reason))
                .message_attributes("source_message_id", text("m-0"));
        }
        send.send().await.unwrap();
    }
    sqs.send_message().queue_url(&queue).message_body("waiting").send().await.unwrap();
    sqs.send_message().queue_url(&queue).message_body("later").delay_seconds(60).send().await.unwrap();

    let depth = local_cloud::dlq::depth(&sqs, &queue).await.unwrap();
    assert_eq!(depth, local_cloud::dlq::Depth { visible: 1, in_flight: 0, delayed: 1 });
    assert_eq!(local_cloud::dlq::depth(&sqs, &dead).await.unwrap().visible, 2);

    let letters = local_cloud::dlq::peek_at_most(&sqs, &dead, 1, 0).await.unwrap();
    assert_eq!(letters.len(), 1, "at most what was asked");
    let mut letters = local_cloud::dlq::peek(&sqs, &dead).await.unwrap();
    letters.sort_by(|a, b| a.body.cmp(&b.body));
    let reasons: Vec<Option<&str>> = letters.iter().map(|l| l.reason.as_deref()).collect();
    assert_eq!(reasons, [Some("not a CloudEvents 1.0 JSON event"), None]);
    assert!(letters.iter().all(|l| l.sent_at_ms.is_some_and(|sent| sent >= before)), "{letters:?}");
    let depth = local_cloud::dlq::depth(&sqs, &dead).await.unwrap();
    assert_eq!((depth.visible, depth.in_flight), (2, 0), "peeking leaves them where they were");

    let arn = local_cloud::dlq::queue_arn(&sqs, &dead).await.unwrap();
    assert!(arn.starts_with("arn:aws:sqs:") && arn.ends_with("-dlq"), "{arn}");

    assert_eq!(local_cloud::dlq::redrive(&sqs, &dead, &queue).await.unwrap(), 2);
    assert_eq!(local_cloud::dlq::depth(&sqs, &dead).await.unwrap(), local_cloud::dlq::Depth::default());
    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let mut moved: Vec<(&str, Vec<&str>)> = received
        .messages()
        .iter()
        .map(|m| {
            let mut names: Vec<&str> = m.message_attributes().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
            names.sort_unstable();
            (m.body().unwrap(), names)
        })
        .collect();
    moved.sort_unstable();
    assert_eq!(
        moved,
        [("waiting", vec![]), ("{\"poison\":1}", vec!["kind"]), ("{\"tired\":2}", vec!["kind"])],
        "back in their queue with their attributes, less the parking reason"
    );

    // Why the local redrive is by hand: the local cloud has no message-move tasks.
    let queue_arn = local_cloud::dlq::queue_arn(&sqs, &queue).await.unwrap();
    assert!(local_cloud::dlq::start_move_task(&sqs, &arn, &queue_arn, None).await.is_err());
}
