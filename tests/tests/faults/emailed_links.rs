//! The emailed links of the account lifecycle (the registration's
//! verification link, the password reset's link) under faults: with the
//! email queue down, its answer lost, or SES failing, registration and a
//! reset request still answer 202 at once, and the email arrives once the
//! fault clears: nothing lost (the task waits in the outbox or on its
//! queue), nothing sent twice (the sender's dedupe key), and the link works.

use std::time::{Duration, Instant};

use local_cloud::eventsource::deliver_one_batch;
use local_cloud::faults::Fault;
use local_cloud::lambda::FunctionProcess;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::harness::{TIMEOUT, proxy, sample_event, start, status_and_headers};
use crate::helpers::{PASSWORD, TestApp, app, emails_to, sqs, unique_email};
use crate::queued_work::{OwnQueue, relay_through};

const VERIFY_SUBJECT: &str = "Confirm your email address";
const RESET_SUBJECT: &str = "Choose a new password";
/// Long enough for the stack's email consumer to have sent a second copy, had it one.
const SECOND_COPY_WINDOW: Duration = Duration::from_secs(10);

/// The links these tests follow wait out an outage, a relay run and the email
/// consumer first: on a loaded machine that can outlast the test stack's short
/// link lifetimes (`xtask/src/test.rs`), so the functions these tests start
/// issue links that live ten minutes.
fn with_long_links<'a>(overrides: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut overrides = overrides.to_vec();
    overrides.push(("EMAIL_VERIFICATION_TTL_SECONDS", "600".to_owned()));
    overrides.push(("PASSWORD_RESET_TTL_SECONDS", "600".to_owned()));
    overrides
}

/// `function`'s sample event with `body` (and no bearer token: these routes are public).
fn guest_event(function: &str, body: &Value) -> Value {
    let mut event = sample_event(function);
    event["body"] = Value::String(body.to_string());
    event
}

/// Invokes a guest route of `function` with `body`: its 202, in well under the function's timeout.
async fn accepted(function: &mut FunctionProcess, name: &str, body: &Value) {
    let answer = function.invoke(&guest_event(name, body), TIMEOUT * 2).await.unwrap();
    let (status, _) = status_and_headers(&answer.payload);
    assert_eq!(status, 202, "{name} answers 202 while the email cannot go out: {}", answer.payload);
    assert!(answer.took < TIMEOUT / 2 + Duration::from_secs(1), "{name} answered after {:?}", answer.took);
}

fn with_subject(emails: Vec<Value>, subject: &str) -> Vec<Value> {
    emails.into_iter().filter(|email| email["subject"] == subject).collect()
}

/// The first email to `to` with `subject` (its link is followed at once:
/// the stack's own links expire in seconds).
async fn first_email(to: &str, subject: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(email) = with_subject(emails_to(to, 1, Duration::from_secs(1)).await, subject).into_iter().next() {
            return email;
        }
        assert!(Instant::now() < deadline, "the \"{subject}\" email to {to} did not arrive");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// How many emails to `to` carry `subject`, after giving a second copy
/// [`SECOND_COPY_WINDOW`] to show up.
async fn copies(to: &str, subject: &str) -> usize {
    with_subject(emails_to(to, usize::MAX, SECOND_COPY_WINDOW).await, subject).len()
}

/// The token of an emailed link (`...#token=<token>`).
fn link_token(email: &Value) -> String {
    let body = email["body"].as_str().unwrap_or_default();
    let (_, rest) = body.split_once("#token=").unwrap_or_else(|| panic!("no link in {email}"));
    rest.split_whitespace().next().unwrap().to_owned()
}

async fn follow_verification_link(app: &TestApp, email: &Value) {
    let response = app.post("/auth/verify-email", None, json!({"token": link_token(email)})).await;
    assert_eq!(response.status(), 200, "the verification link works: {}", response.text().await.unwrap());
}

async fn follow_reset_link(app: &TestApp, email: &Value, password: &str) {
    let body = json!({"token": link_token(email), "password": password});
    let response = app.post("/auth/password-reset/confirm", None, body).await;
    assert_eq!(response.status(), 204, "the reset link works: {}", response.text().await.unwrap());
}

#[tokio::test]
async fn a_registration_while_the_email_queue_is_down_answers_202_and_its_verification_email_arrives_once_it_is_back() {
    let app = app();
    let to = unique_email("verify-queue-down");
    let queues = proxy("AWS_ENDPOINT_URL_SQS").await;
    let mut register = start("register", &with_long_links(&[("AWS_ENDPOINT_URL_SQS", queues.url())])).await;
    register.ready(Duration::from_secs(30)).await.unwrap();
    queues.set(Fault::BlackHole);

    accepted(&mut register, "register", &json!({"email": to, "password": PASSWORD})).await;

    queues.set(Fault::Pass);
    relay_through(&queues).await;
    follow_verification_link(&app, &first_email(&to, VERIFY_SUBJECT).await).await;
    assert_eq!(copies(&to, VERIFY_SUBJECT).await, 1, "one verification email");
}

#[tokio::test]
async fn a_registration_whose_queue_answer_is_lost_sends_its_verification_email_once() {
    // SendMessage takes effect but its answer never comes back: the
    // registration cannot know, keeps its outbox record, and the relay
    // publishes the task a second time. The sender's dedupe key must hold.
    let app = app();
    let to = unique_email("verify-answer-lost");
    let queues = proxy("AWS_ENDPOINT_URL_SQS").await;
    let mut register = start("register", &with_long_links(&[("AWS_ENDPOINT_URL_SQS", queues.url())])).await;
    register.ready(Duration::from_secs(30)).await.unwrap();
    queues.set(Fault::LoseResponse);
    let before = queues.requests();

    accepted(&mut register, "register", &json!({"email": to, "password": PASSWORD})).await;
    assert!(queues.requests() > before, "the registration tried to publish");

    queues.set(Fault::Pass);
    relay_through(&queues).await;
    follow_verification_link(&app, &first_email(&to, VERIFY_SUBJECT).await).await;
    assert_eq!(
        copies(&to, VERIFY_SUBJECT).await,
        1,
        "one verification email though the task was queued more than once"
    );
}

#[tokio::test]
async fn a_password_reset_asked_while_the_email_queue_fails_answers_202_and_its_link_arrives_once_it_is_back() {
    let app = app();
    let customer = app.new_user("reset-queue-down").await;
    let queues = proxy("AWS_ENDPOINT_URL_SQS").await;
    let mut request_reset =
        start("request-password-reset", &with_long_links(&[("AWS_ENDPOINT_URL_SQS", queues.url())])).await;
    request_reset.ready(Duration::from_secs(30)).await.unwrap();
    queues.set(Fault::ServerError);

    accepted(&mut request_reset, "request-password-reset", &json!({"email": customer.email})).await;

    queues.set(Fault::Pass);
    relay_through(&queues).await;
    let chosen = "a new one chosen after the outage";
    follow_reset_link(&app, &first_email(&customer.email, RESET_SUBJECT).await, chosen).await;
    assert_eq!(app.login(&customer.email, PASSWORD).await.status(), 401, "the old password no longer works");
    assert_eq!(app.login(&customer.email, chosen).await.status(), 200, "the new password works");
    assert_eq!(copies(&customer.email, RESET_SUBJECT).await, 1, "one reset email");
}

#[tokio::test]
async fn while_ses_fails_the_verification_and_reset_emails_wait_on_their_queue_and_each_is_sent_once_it_recovers() {
    // The two functions publish to an email queue of this test's own (the
    // template's redrive limit, a one-second visibility timeout), drained
    // by a send-email whose SES fails, then recovers.
    let app = app();
    let sqs = sqs().await;
    let queue = OwnQueue::create(&sqs, "emailed-links").await;
    // A queue the template does not know: these two processes' AWS calls are
    // recorded aside, not in the file the suite's IAM check reads.
    let calls_aside = std::env::temp_dir().join(format!("{}-aws-calls.tsv", queue.name)).display().to_string();
    let own_queue = [("EMAIL_SEND_QUEUE_URL", queue.url.clone()), ("SHOP_RECORD_AWS_CALLS", calls_aside)];

    let to = unique_email("ses-down-links");
    let mut register = start("register", &with_long_links(&own_queue)).await;
    register.ready(Duration::from_secs(30)).await.unwrap();
    accepted(&mut register, "register", &json!({"email": to, "password": PASSWORD})).await;
    let mut request_reset = start("request-password-reset", &with_long_links(&own_queue)).await;
    request_reset.ready(Duration::from_secs(30)).await.unwrap();
    accepted(&mut request_reset, "request-password-reset", &json!({"email": to})).await;

    let ses = proxy("AWS_ENDPOINT_URL_SESV2").await;
    let mut sender = start("send-email", &[("AWS_ENDPOINT_URL_SESV2", ses.url())]).await;
    sender.ready(Duration::from_secs(30)).await.unwrap();
    ses.set(Fault::ServerError);
    let sender = Mutex::new(sender);
    let mapping = queue.send_email_mapping();
    // Two failed deliveries of both tasks (under the redrive limit of five).
    let mut failing = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while failing < 4 {
        failing += deliver_one_batch(&mapping, &sqs, &sender).await.unwrap();
        assert!(Instant::now() < deadline, "only {failing} failing deliveries in a minute");
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    assert!(ses.requests() >= 4, "each delivery tried SES ({} requests)", ses.requests());
    assert!(emails_to(&to, 1, Duration::from_millis(300)).await.is_empty(), "nothing was sent while SES failed");

    ses.set(Fault::Pass);
    let deadline = Instant::now() + Duration::from_secs(60);
    while emails_to(&to, 2, Duration::ZERO).await.len() < 2 {
        deliver_one_batch(&mapping, &sqs, &sender).await.unwrap();
        assert!(Instant::now() < deadline, "the emails were not sent within a minute of SES's recovery");
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    follow_verification_link(&app, &first_email(&to, VERIFY_SUBJECT).await).await;
    follow_reset_link(&app, &first_email(&to, RESET_SUBJECT).await, "a new password after SES recovered").await;
    // Whatever is left on the queue now would be a second copy: deliver it too.
    for _ in 0..3 {
        deliver_one_batch(&mapping, &sqs, &sender).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    assert_eq!((copies(&to, VERIFY_SUBJECT).await, copies(&to, RESET_SUBJECT).await), (1, 1), "each email once");
    assert!(local_cloud::dlq::peek(&sqs, &queue.dead_letter_url).await.unwrap().is_empty(), "nothing was parked");
    let depth = local_cloud::dlq::depth(&sqs, &queue.url).await.unwrap();
    assert_eq!(depth.visible + depth.in_flight + depth.delayed, 0, "the queue is drained");
}
