//! The transactional outbox against the real local cloud: SQS unreachable
//! while a write commits, then reachable again.

use std::collections::BTreeMap;
use std::time::Duration;

use domain::ports::{Publisher, StoreError, UserStore};
use domain::{DomainEvent, Email, NewUser, PasswordHash, Role};
use platform::dynamo::DynamoUserStore;
use platform::outbox::OutboxPublisher;
use time::OffsetDateTime;

use crate::fresh_table;

fn sqs_at(endpoint: &str, config: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(config).endpoint_url(endpoint).build())
}

#[tokio::test]
async fn an_event_committed_while_sqs_is_down_is_delivered_once_by_the_relay() {
    tests::helpers::require_local_cloud();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs.create_queue().queue_name(format!("outbox-test-{}", ulid::Ulid::new())).send().await.unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let queues = BTreeMap::from([("user-created".to_owned(), queue_url.clone())]);
    let table = fresh_table().await;
    let users = DynamoUserStore::new(table.clone());

    // SQS unreachable: nothing listens on port 1.
    let broken = OutboxPublisher::new(table.clone(), sqs_at("http://127.0.0.1:1", &config), queues.clone());
    let user = NewUser {
        email: Email::parse("outage@example.com").unwrap(),
        password_hash: PasswordHash::from_phc("$argon2id$x".into()),
        role: Role::User,
    }
    .into_user(OffsetDateTime::now_utc());
    let event = DomainEvent::user_created(user.id, &user.email, "corr-1", OffsetDateTime::now_utc());
    users.insert(&user, Some(&event)).await.unwrap();
    broken.publish_after_commit(&event).await;

    // A write that fails records no event.
    let mut twin = user.clone();
    twin.id = domain::UserId::generate();
    let twin_event = DomainEvent::user_created(twin.id, &twin.email, "corr-2", OffsetDateTime::now_utc());
    assert!(matches!(
        users.insert(&twin, Some(&twin_event)).await,
        Err(StoreError::AlreadyExists(domain::ports::Taken::Email))
    ));

    // SQS is back: the relay sends what is left, once.
    let working = OutboxPublisher::new(table.clone(), sqs, queues);
    let report = working.relay(Duration::ZERO, 100).await.unwrap();
    assert_eq!((report.published, report.failed), (1, 0));
    assert_eq!(working.relay(Duration::ZERO, 100).await.unwrap().published, 0, "nothing left to send");

    let sqs = aws_sdk_sqs::Client::new(&config);
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let bodies: Vec<serde_json::Value> =
        received.messages().iter().map(|m| serde_json::from_str(m.body().unwrap()).unwrap()).collect();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["id"], event.id.to_string());
    assert_eq!(bodies[0]["type"], "user-created");
    assert_eq!(bodies[0]["correlationid"], "corr-1");
    assert_eq!(bodies[0]["specversion"], "1.0");
}

#[tokio::test]
async fn fresh_events_are_left_to_their_own_handler() {
    tests::helpers::require_local_cloud();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = fresh_table().await;
    let users = DynamoUserStore::new(table.clone());
    let user = NewUser {
        email: Email::parse("fresh@example.com").unwrap(),
        password_hash: PasswordHash::from_phc("$argon2id$x".into()),
        role: Role::User,
    }
    .into_user(OffsetDateTime::now_utc());
    let event = DomainEvent::user_created(user.id, &user.email, "corr", OffsetDateTime::now_utc());
    users.insert(&user, Some(&event)).await.unwrap();
    let publisher = OutboxPublisher::new(table, aws_sdk_sqs::Client::new(&config), BTreeMap::new());
    let report = publisher.relay(Duration::from_secs(60), 100).await.unwrap();
    assert_eq!((report.published, report.skipped_fresh), (0, 1));
}
