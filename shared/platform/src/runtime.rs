//! Process start-up shared by every function: what `main` calls before it
//! hands over to the Lambda runtime. Everything here runs once per cold start.

use std::sync::Arc;

use crate::Settings;
use crate::auth::{SigningKeys, Tokens};
use crate::aws::CallRecorder;
use anyhow::Context;

use crate::batch::{BatchProcessor, SqsDeadLetters};
use crate::dynamo::{
    DynamoIdempotencyStore, DynamoMessageClaims, DynamoOrderStore, DynamoProductStore, DynamoUserStore, Table,
};
use crate::http::{Access, Authenticator, HttpServer};
use crate::mail::SesMailer;
use crate::outbox::OutboxPublisher;
use crate::pagination::Cursors;
use crate::throttle::{DynamoSignInHistory, FixedWindow, History, Limit};

/// A client of `$sdk` on the shared configuration, with the call timer
/// (every call timed, traced) and, when the suite asks, the call recorder.
macro_rules! client {
    ($sdk:ident, $config:expr, $recorder:expr) => {{
        let mut builder = $sdk::config::Builder::from($config).interceptor(crate::aws::calls::CallTimer);
        if let Some(recorder) = $recorder {
            builder = builder.interceptor(recorder.clone());
        }
        $sdk::Client::from_conf(builder.build())
    }};
}

/// Configuration and SDK settings, loaded once.
pub struct Init {
    /// The function's name: its log and metric dimension, and the prefix of
    /// its message claims.
    pub name: &'static str,
    /// What the environment configured, read once at start.
    pub settings: Settings,
    aws: aws_config::SdkConfig,
    table: Table,
    recorder: Option<CallRecorder>,
}

impl Init {
    /// Starts logging, reads settings and loads the SDK configuration.
    pub async fn start(name: &'static str) -> anyhow::Result<Self> {
        crate::telemetry::init(name);
        crate::metrics::init(crate::metrics::Dimensions::from_env(name));
        let settings = Settings::from_env()?;
        let aws = crate::aws::load_config(&settings.budget()).await;
        let recorder = CallRecorder::from_env(name);
        crate::aws::xray::init();
        // Every function reads or writes the table: open its connection now.
        let dynamodb = client!(aws_sdk_dynamodb, &aws, &recorder);
        let table = Table::new(dynamodb, settings.table_name.clone());
        table.warm_up().await;
        Ok(Self { name, settings, aws, table, recorder })
    }

    fn sqs(&self) -> aws_sdk_sqs::Client {
        client!(aws_sdk_sqs, &self.aws, &self.recorder)
    }

    fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        client!(aws_sdk_secretsmanager, &self.aws, &self.recorder)
    }

    fn sesv2(&self) -> aws_sdk_sesv2::Client {
        client!(aws_sdk_sesv2, &self.aws, &self.recorder)
    }

    /// The table, its connection opened during start; cheap to clone.
    pub fn table(&self) -> Table {
        self.table.clone()
    }

    /// Accounts in the table.
    pub fn user_store(&self) -> DynamoUserStore {
        DynamoUserStore::new(self.table())
    }

    /// The catalogue in the table.
    pub fn product_store(&self) -> DynamoProductStore {
        DynamoProductStore::new(self.table())
    }

    /// Orders, and the stock they reserve, in the table.
    pub fn order_store(&self) -> DynamoOrderStore {
        DynamoOrderStore::new(self.table()).with_limits(self.settings.hold_limits)
    }

    /// Stored responses of requests made with an Idempotency-Key.
    pub fn idempotency_store(&self) -> DynamoIdempotencyStore {
        DynamoIdempotencyStore::new(self.table())
    }

    /// Publishes committed events to their queues (the outbox's fast path).
    pub fn publisher(&self) -> OutboxPublisher {
        OutboxPublisher::new(self.table(), self.sqs(), self.settings.queue_urls.clone())
    }

    /// The publisher, its connection to `queue` (where this function
    /// publishes most) opened now, during init, so the first message does
    /// not pay for it. Needs `sqs:GetQueueAttributes` on that queue.
    pub async fn publisher_warmed_for(&self, queue: &str) -> OutboxPublisher {
        let publisher = self.publisher();
        publisher.warm_up(queue).await;
        publisher
    }

    /// Claims on queue messages, held for the function's claim duration.
    pub fn message_claims(&self) -> DynamoMessageClaims {
        DynamoMessageClaims::new(self.table(), self.settings.budget().claim_duration())
    }

    /// The batch processor for a consumer of `event_type` events, parking
    /// poison messages in that queue's dead-letter queue.
    pub fn batch(&self, event_type: &'static str) -> anyhow::Result<BatchProcessor> {
        let queue_url = self
            .settings
            .dead_letter_urls
            .get(event_type)
            .with_context(|| format!("no dead-letter queue URL configured for {event_type}"))?
            .clone();
        let dead_letters = Arc::new(SqsDeadLetters { sqs: self.sqs(), queue_url });
        let claims = Arc::new(self.message_claims());
        Ok(BatchProcessor::new(self.name, event_type, self.settings.budget(), dead_letters, claims))
    }

    /// Sends email through SES from `SENDER_EMAIL`; an error if it is not set.
    pub fn mailer(&self) -> anyhow::Result<SesMailer> {
        anyhow::ensure!(!self.settings.sender_email.is_empty(), "SENDER_EMAIL is not set");
        Ok(SesMailer::new(self.sesv2(), self.settings.sender_email.clone()))
    }

    /// A throttle counting attempts against `limit` in the table.
    pub fn throttle(&self, limit: Limit) -> FixedWindow {
        FixedWindow::new(self.table(), limit.name, limit.attempts, limit.window)
    }

    /// The sign-in history `history` in the table.
    pub fn sign_in_history(&self, history: History) -> DynamoSignInHistory {
        DynamoSignInHistory::new(self.table(), history.name, history.ttl)
    }

    /// The signing keys, read now so the first request finds them cached.
    pub async fn signing_keys(&self) -> anyhow::Result<Arc<SigningKeys>> {
        let keys = self.signing_keys_on_first_use()?;
        if let Err(error) = keys.current().await {
            // Not fatal: the first request retries and answers 503 if the secret is still unreachable.
            tracing::warn!(error = crate::telemetry::chain(error.as_ref()), "could not read signing keys during init");
        }
        Ok(keys)
    }

    /// The signing keys without reading them during init: for a public read
    /// whose callers mostly send no token (`GET /products/{id}`), so a
    /// guest's cold start does not wait on Secrets Manager; the first request
    /// with a token reads them.
    pub fn signing_keys_on_first_use(&self) -> anyhow::Result<Arc<SigningKeys>> {
        anyhow::ensure!(!self.settings.signing_key_secret_id.is_empty(), "SIGNING_KEY_SECRET_ID is not set");
        Ok(Arc::new(SigningKeys::from_secrets_manager(
            self.secrets_manager(),
            self.settings.signing_key_secret_id.clone(),
            self.settings.key_cache_ttl,
        )))
    }

    /// Access tokens signed with `keys`, living `TOKEN_TTL_SECONDS`.
    pub fn tokens(&self, keys: &Arc<SigningKeys>) -> Tokens {
        Tokens::new(keys.clone(), self.settings.token_ttl)
    }

    /// Pagination cursors keyed by `keys`.
    pub fn cursors(&self, keys: &Arc<SigningKeys>) -> Cursors {
        Cursors::new(keys.clone())
    }

    /// Token checks, with the stored account where it matters (writes, admins).
    pub fn authenticator(&self, keys: &Arc<SigningKeys>) -> Authenticator {
        Authenticator::new(self.tokens(keys), Arc::new(self.user_store()))
    }

    /// The HTTP layer for this function, admitting the callers `access`
    /// names (a level that reads tokens carries its [`Init::authenticator`]).
    /// The per-client request limit is not here: WAF (cloud) and the local
    /// API front (locally) enforce it.
    pub fn http(&self, access: Access) -> HttpServer {
        HttpServer::new(self.name, access, &self.settings)
    }
}

impl Init {
    /// Hands the process over to the Lambda runtime for a scheduled function:
    /// each invocation runs `work` in an `invocation` span (function, Lambda
    /// request id, trace id, cold start), with debug sampling, and writes its
    /// metrics as one document.
    pub async fn serve_scheduled<W, F>(&self, work: W) -> Result<(), lambda_runtime::Error>
    where
        W: Fn() -> F + Send + Sync + 'static,
        F: std::future::Future<Output = anyhow::Result<serde_json::Value>> + Send,
    {
        let name = self.name;
        let work = Arc::new(work);
        Box::pin(lambda_runtime::run(lambda_runtime::service_fn(
            move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
                let work = work.clone();
                async move {
                    crate::telemetry::begin_invocation();
                    let cold_start = crate::invocation::take_cold_start();
                    let trace = event.context.xray_trace_id.clone().unwrap_or_default();
                    let span = tracing::info_span!(
                        "invocation",
                        function = name,
                        request_id = %event.context.request_id,
                        trace_id = %crate::invocation::trace_id(&trace),
                        cold_start,
                    );
                    crate::telemetry::log_event(&event.payload);
                    let outcome =
                        crate::invocation::with_trace(trace.clone(), tracing::Instrument::instrument(work(), span))
                            .await;
                    crate::metrics::count(crate::metrics::names::COLD_START, f64::from(u8::from(cold_start)));
                    crate::metrics::flush(&[
                        ("RequestId", &event.context.request_id),
                        ("TraceId", crate::invocation::trace_id(&trace)),
                    ]);
                    outcome.map_err(lambda_runtime::Error::from)
                }
            },
        )))
        .await
    }
}

/// Runs a function's `main` to completion on a current-thread runtime: Lambda
/// sends one event at a time, so worker threads would only add start-up time
/// and memory (each would keep argon2's 12 MiB in an allocator arena of its own).
pub fn run<F, E>(main: F) -> Result<(), E>
where
    F: std::future::Future<Output = Result<(), E>>,
{
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime starts").block_on(main)
}

/// Keeps `value` for the life of the process, so handlers can borrow it
/// without reference counting. Meant for the few objects `main` builds once.
pub fn forever<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}
