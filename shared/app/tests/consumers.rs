//! Queue consumers on in-memory adapters: what each does with an event, a
//! duplicate, an outage and a message that can never succeed.

mod support;

use domain::ports::OrderStore;
use domain::{DomainEvent, EmailTask, OrderStatus, Role};
use framework::batch::{Claim, MessageClaims, RecordError};
use framework::events::CloudEvent;
use in_memory::{Dependency, Memory};
use serde_json::json;
use support::{product, user};

const CLAIM_DURATION: std::time::Duration = std::time::Duration::from_secs(15);

fn event(kind: &str, data: serde_json::Value) -> CloudEvent {
    CloudEvent::new(
        adapters::outbox::SOURCE,
        ulid::Ulid::new().to_string(),
        kind,
        "corr-1",
        time::OffsetDateTime::now_utc(),
        data,
    )
}

async fn placed_order(memory: &Memory, quantity: i64, stock: i64) -> (domain::User, domain::Order, CloudEvent) {
    let buyer = user(memory, Role::User).await;
    let mug = product(memory, 1999, stock).await;
    let order = in_memory::contract::new_order(buyer.id, &[&mug], quantity);
    let placed = DomainEvent::order_placed(order.id, buyer.id, "corr-1", time::OffsetDateTime::now_utc());
    memory.orders().place(&order, &placed, None).await.unwrap();
    (buyer, order, adapters::outbox::envelope(&placed))
}

#[tokio::test]
async fn a_placed_order_is_confirmed_and_its_email_committed_with_the_decision() {
    let memory = Memory::new();
    let (buyer, order, placed) = placed_order(&memory, 2, 5).await;
    app::consumers::on_order_placed(placed.clone(), &memory.users(), &memory.orders(), &memory.publisher())
        .await
        .unwrap();
    assert_eq!(memory.order(order.id).unwrap().status, OrderStatus::Confirmed);
    let emails: Vec<DomainEvent> = memory.published().into_iter().filter(|e| e.kind() == "email-send").collect();
    assert_eq!(emails.len(), 1);
    let domain::EventData::EmailRequested(EmailTask::OrderConfirmed { to, total, .. }) = &emails[0].data else {
        panic!("a confirmation email task")
    };
    assert_eq!((to.as_str(), total.as_str()), (buyer.email.as_ref(), "39.98 EUR"));

    // A duplicate delivery takes no more stock and sends no second email.
    app::consumers::on_order_placed(placed, &memory.users(), &memory.orders(), &memory.publisher()).await.unwrap();
    assert_eq!(memory.product(order.lines[0].product_id).unwrap().stock, 3);
    assert_eq!(memory.published().iter().filter(|e| e.kind() == "email-send").count(), 1);
}

#[tokio::test]
async fn short_stock_rejects_the_order_with_the_reason_and_takes_nothing() {
    let memory = Memory::new();
    let (_, order, placed) = placed_order(&memory, 3, 2).await;
    app::consumers::on_order_placed(placed, &memory.users(), &memory.orders(), &memory.publisher()).await.unwrap();
    let rejected = memory.order(order.id).unwrap();
    assert_eq!(rejected.status, OrderStatus::Rejected);
    assert!(rejected.reason.unwrap().contains(order.lines[0].sku.as_ref()));
    assert_eq!(memory.product(order.lines[0].product_id).unwrap().stock, 2);
}

#[tokio::test]
async fn an_outage_is_retried_and_an_order_that_does_not_exist_is_poison() {
    let memory = Memory::new();
    let (_, order, placed) = placed_order(&memory, 1, 5).await;
    memory.set_down(Dependency::Table, true);
    let outage =
        app::consumers::on_order_placed(placed.clone(), &memory.users(), &memory.orders(), &memory.publisher()).await;
    assert!(matches!(outage, Err(RecordError::Retry(_))), "{outage:?}");
    memory.set_down(Dependency::Table, false);
    assert_eq!(memory.order(order.id).unwrap().status, OrderStatus::Pending, "nothing half-done");

    let ghost = event(
        "order-placed",
        json!({"order_id": domain::OrderId::generate().to_string(), "owner_id": order.owner.expect("placed by an account").to_string()}),
    );
    let poison = app::consumers::on_order_placed(ghost, &memory.users(), &memory.orders(), &memory.publisher()).await;
    assert!(matches!(poison, Err(RecordError::Poison(reason)) if reason.contains("does not exist")));
    let malformed = event("order-placed", json!({"order": "x"}));
    let poison =
        app::consumers::on_order_placed(malformed, &memory.users(), &memory.orders(), &memory.publisher()).await;
    assert!(matches!(poison, Err(RecordError::Poison(_))));
}

#[tokio::test]
async fn a_new_user_gets_one_welcome_task_and_a_queue_outage_retries_it() {
    let memory = Memory::new();
    let created =
        event("user-created", json!({"user_id": domain::UserId::generate().to_string(), "email": "new@example.com"}));
    memory.set_down(Dependency::Queues, true);
    assert!(matches!(
        app::consumers::on_user_created(created.clone(), &memory.publisher()).await,
        Err(RecordError::Retry(_))
    ));
    memory.set_down(Dependency::Queues, false);
    app::consumers::on_user_created(created, &memory.publisher()).await.unwrap();
    let published = memory.published();
    assert_eq!((published.len(), published[0].kind()), (1, "email-send"));
    let bad = event("user-created", json!({"user_id": "nope", "email": "new@example.com"}));
    assert!(matches!(app::consumers::on_user_created(bad, &memory.publisher()).await, Err(RecordError::Poison(_))));
}

fn task(to: &str, key: &str) -> CloudEvent {
    let task = EmailTask::Welcome { to: to.into(), dedupe_key: key.into() };
    event("email-send", serde_json::to_value(task).unwrap())
}

#[tokio::test]
async fn an_email_is_sent_once_per_dedupe_key_whatever_the_deliveries() {
    let memory = Memory::new();
    let sent = memory.message_claims(CLAIM_DURATION);
    for _ in 0..3 {
        app::consumers::send_email(task("ada@example.com", "welcome#1"), &memory.mailer(), &sent).await.unwrap();
    }
    assert_eq!(memory.sent_emails().len(), 1);
    assert_eq!(memory.sent_emails()[0].subject, "Welcome to the shop");
}

#[tokio::test]
async fn an_email_being_sent_elsewhere_is_retried_never_assumed_sent() {
    let memory = Memory::new();
    let sent = memory.message_claims(CLAIM_DURATION);
    assert_eq!(sent.claim("email#welcome#2").await.unwrap(), Claim::Acquired, "another attempt holds it");
    let held = app::consumers::send_email(task("ada@example.com", "welcome#2"), &memory.mailer(), &sent).await;
    assert!(matches!(held, Err(RecordError::Retry(_))), "{held:?}");
    memory.advance(CLAIM_DURATION + std::time::Duration::from_secs(1));
    app::consumers::send_email(task("ada@example.com", "welcome#2"), &memory.mailer(), &sent).await.unwrap();
    assert_eq!(memory.sent_emails().len(), 1);
}

#[tokio::test]
async fn mail_outages_retry_and_a_refused_recipient_is_poison_that_a_redrive_can_send_later() {
    let memory = Memory::new();
    let sent = memory.message_claims(CLAIM_DURATION);
    memory.set_down(Dependency::Mail, true);
    assert!(matches!(
        app::consumers::send_email(task("ada@example.com", "k3"), &memory.mailer(), &sent).await,
        Err(RecordError::Retry(_))
    ));
    memory.set_down(Dependency::Mail, false);
    app::consumers::send_email(task("ada@example.com", "k3"), &memory.mailer(), &sent).await.unwrap();
    assert_eq!(memory.sent_emails().len(), 1, "sent once the outage ended");

    memory.refuse_recipient("bounce@example.com");
    let refused = app::consumers::send_email(task("bounce@example.com", "k4"), &memory.mailer(), &sent).await;
    assert!(matches!(refused, Err(RecordError::Poison(reason)) if reason.contains("refused")));
    assert!(matches!(
        app::consumers::send_email(task("not an address", "k5"), &memory.mailer(), &sent).await,
        Err(RecordError::Poison(_))
    ));
    // Not marked sent: after the cause is fixed a redrive sends it.
    memory.accept_recipient("bounce@example.com");
    app::consumers::send_email(task("bounce@example.com", "k4"), &memory.mailer(), &sent).await.unwrap();
    assert_eq!(memory.sent_emails().len(), 2);
}
