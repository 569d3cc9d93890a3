//! The transactional outbox against the real local cloud: SQS unreachable
//! while a write commits, then reachable again.

use std::collections::BTreeMap;
use std::time::Duration;

use adapters::dynamo::DynamoUserStore;
use adapters::outbox::OutboxPublisher;
use domain::ports::{Publisher, StoreError, UserStore};
use domain::{DomainEvent, Email, NewUser, PasswordHash, Role};
use time::OffsetDateTime;

use crate::fresh_table;

/// The relay's time budget in these tests: far more than they need.
const BUDGET: Duration = Duration::from_secs(30);

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
    let report = working.relay(Duration::ZERO, BUDGET).await.unwrap();
    assert_eq!((report.published, report.failed), (1, 0));
    assert_eq!(working.relay(Duration::ZERO, BUDGET).await.unwrap().published, 0, "nothing left to send");

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
    let report = publisher.relay(Duration::from_secs(60), BUDGET).await.unwrap();
    assert_eq!((report.published, report.skipped_fresh), (0, 1));
}

/// A backlog larger than one page drains in one run, with pagination,
/// batches and several rounds; an unreadable record (here written under the
/// outbox key from before the shards) is parked with its reason instead of
/// stopping the run. Before, the relay took 100 records a run, one
/// SendMessage each, and an unreadable record failed the whole run.
#[tokio::test]
async fn a_backlog_drains_in_one_run_and_an_unreadable_record_is_parked() {
    tests::helpers::require_local_cloud();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs.create_queue().queue_name(format!("outbox-backlog-{}", ulid::Ulid::new())).send().await.unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let table = fresh_table().await;
    let users = DynamoUserStore::new(table.clone());
    let mut events = std::collections::BTreeSet::new();
    for index in 0..250 {
        let user = NewUser {
            email: Email::parse(&format!("backlog-{index}@example.com")).unwrap(),
            password_hash: PasswordHash::from_phc("$argon2id$x".into()),
            role: Role::User,
        }
        .into_user(OffsetDateTime::now_utc());
        let event = DomainEvent::user_created(user.id, &user.email, "corr", OffsetDateTime::now_utc());
        users.insert(&user, Some(&event)).await.unwrap();
        events.insert(event.id.to_string());
    }
    let corrupt = ulid::Ulid::new().to_string();
    tests::helpers::put_unreadable_outbox_record(table.client(), table.name(), &corrupt).await;
    let text = |value: &str| aws_sdk_dynamodb::types::AttributeValue::S(value.to_owned());

    let publisher = OutboxPublisher::new(
        table.clone(),
        sqs.clone(),
        BTreeMap::from([("user-created".to_owned(), queue_url.clone())]),
    );
    let report = publisher.relay(Duration::ZERO, BUDGET).await.unwrap();
    assert_eq!((report.published, report.parked, report.failed), (250, 1, 0), "{report:?}");
    let again = publisher.relay(Duration::ZERO, BUDGET).await.unwrap();
    assert_eq!((again.published, again.parked, again.failed), (0, 0, 0), "nothing left: {again:?}");

    let parked = table
        .client()
        .get_item()
        .table_name(table.name())
        .key("pk", text(&format!("OUTBOX#{corrupt}")))
        .key("sk", text("OUTBOX"))
        .send()
        .await
        .unwrap()
        .item
        .expect("a parked record is kept");
    assert_eq!(parked["gsi1pk"].as_s().unwrap(), "OUTBOX#PARKED");
    assert!(parked["parked_reason"].as_s().unwrap().contains("body"), "{parked:?}");

    let mut received = std::collections::BTreeSet::new();
    loop {
        let answer = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if answer.messages().is_empty() {
            break;
        }
        for message in answer.messages() {
            let body: serde_json::Value = serde_json::from_str(message.body().unwrap()).unwrap();
            received.insert(body["id"].as_str().unwrap().to_owned());
            sqs.delete_message()
                .queue_url(&queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(received, events, "every event on its queue, once");
}

/// A run whose budget is spent starts no more pages: the shards it has not
/// reached wait for the next run. Before, every shard not yet drained still
/// read and sent one page after the deadline (sixty-four shards, four at a
/// time), so a run on a 5 s budget took 16.5 s locally, past the function's
/// 10 s timeout, which would kill it mid-batch.
#[tokio::test]
async fn a_run_whose_budget_is_spent_starts_no_more_pages() {
    tests::helpers::require_local_cloud();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs.create_queue().queue_name(format!("outbox-budget-{}", ulid::Ulid::new())).send().await.unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let table = fresh_table().await;
    let users = DynamoUserStore::new(table.clone());
    for index in 0..40 {
        let user = NewUser {
            email: Email::parse(&format!("budget-{index}@example.com")).unwrap(),
            password_hash: PasswordHash::from_phc("$argon2id$x".into()),
            role: Role::User,
        }
        .into_user(OffsetDateTime::now_utc());
        let event = DomainEvent::user_created(user.id, &user.email, "corr", OffsetDateTime::now_utc());
        users.insert(&user, Some(&event)).await.unwrap();
    }
    let publisher = OutboxPublisher::new(table, sqs, BTreeMap::from([("user-created".to_owned(), queue_url.clone())]));

    let spent = publisher.relay(Duration::ZERO, Duration::ZERO).await.unwrap();
    assert_eq!((spent.published, spent.parked, spent.failed), (0, 0, 0), "a spent budget sent: {spent:?}");
    let next = publisher.relay(Duration::ZERO, BUDGET).await.unwrap();
    assert_eq!((next.published, next.failed), (40, 0), "the next run sends what waited: {next:?}");
}
