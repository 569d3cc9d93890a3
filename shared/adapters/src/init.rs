//! The shop's wiring, shared by every function: what `main` calls before it
//! hands over to the framework. Everything here runs once per cold start:
//! settings, the SDK clients (each with the framework's call timer) and the
//! adapters built on them. Init's I/O (the table's connection, the keys'
//! reads, a queue's connection) is registered where `main` asks for it and
//! runs all at once ([`WarmUps`]) as soon as `main` waits: in the serving
//! loop, which waits for all of it before the first event.

use std::sync::Arc;

use anyhow::Context;
use framework::Settings;
use framework::auth::{CursorKeys, PrivateKeys, PublicKeys, SecretCache, SecretValue, Tokens};
use framework::batch::BatchProcessor;
use framework::http::{Access, Authenticator, HttpServer};
use framework::pagination::Cursors;
use framework::runtime::WarmUps;

use crate::config::ShopSettings;
use crate::dead_letters::SqsDeadLetters;
use crate::dynamo::{
    DynamoIdempotencyStore, DynamoMessageClaims, DynamoOrderStore, DynamoProductStore, DynamoUserStore, Table,
};
use crate::mail::SesMailer;
use crate::outbox::OutboxPublisher;
use crate::recorder::CallRecorder;
use crate::throttle::{DynamoSignInHistory, FixedWindow, History, Limit};

/// A client of `$sdk` on the shared configuration, with the call timer
/// (every call timed, traced) and, when the suite asks, the call recorder.
macro_rules! client {
    ($sdk:ident, $config:expr, $recorder:expr) => {{
        let mut builder = $sdk::config::Builder::from($config).interceptor(framework::aws::calls::CallTimer);
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
    /// What the environment configured of the framework, read once at start.
    pub settings: Settings,
    /// What the environment configured of the shop's rules, read once at start.
    pub shop: ShopSettings,
    aws: aws_config::SdkConfig,
    table: Table,
    recorder: Option<CallRecorder>,
    warm_ups: Arc<WarmUps>,
}

impl Init {
    /// Starts logging, reads settings, loads the SDK configuration and
    /// registers the table's warm-up read (its connection).
    pub async fn start(name: &'static str) -> anyhow::Result<Self> {
        framework::telemetry::init(name);
        framework::metrics::init(framework::metrics::Dimensions::from_env(name));
        let settings = Settings::from_env()?;
        let shop = ShopSettings::from_env()?;
        let aws = framework::aws::load_config(&settings).await?;
        let recorder = CallRecorder::from_env(name);
        framework::aws::xray::init();
        // Every function reads or writes the table: its connection opens during init.
        let dynamodb = client!(aws_sdk_dynamodb, &aws, &recorder);
        let table = Table::new(dynamodb, shop.table_name.clone());
        let warm_ups = Arc::new(WarmUps::default());
        let warming = table.clone();
        warm_ups.start(async move { warming.warm_up().await });
        Ok(Self { name, settings, shop, aws, table, recorder, warm_ups })
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

    /// Pending password resets in the table.
    pub fn password_resets(&self) -> crate::dynamo::DynamoPasswordResets {
        crate::dynamo::DynamoPasswordResets::new(self.table())
    }

    /// Sessions (refresh-token families) in the table.
    pub fn session_store(&self) -> crate::dynamo::DynamoSessionStore {
        crate::dynamo::DynamoSessionStore::new(self.table())
    }

    /// Pending email verifications in the table.
    pub fn verifications(&self) -> crate::dynamo::DynamoVerifications {
        crate::dynamo::DynamoVerifications::new(self.table())
    }

    /// The admins' second factors (TOTP enrolments, recovery codes) in the table.
    pub fn second_factors(&self) -> crate::dynamo::DynamoSecondFactorStore {
        crate::dynamo::DynamoSecondFactorStore::new(self.table())
    }

    /// The catalogue in the table.
    pub fn product_store(&self) -> DynamoProductStore {
        DynamoProductStore::new(self.table())
    }

    /// Orders, and the stock they reserve, in the table.
    pub fn order_store(&self) -> DynamoOrderStore {
        DynamoOrderStore::new(self.table()).with_limits(self.shop.hold_limits)
    }

    /// Stored responses of requests made with an Idempotency-Key.
    pub fn idempotency_store(&self) -> DynamoIdempotencyStore {
        DynamoIdempotencyStore::new(self.table())
    }

    /// Publishes committed events to their queues (the outbox's fast path).
    pub fn publisher(&self) -> OutboxPublisher {
        OutboxPublisher::new(self.table(), self.sqs(), self.shop.queue_urls.clone())
    }

    /// The publisher, its connection to `queue` (where this function
    /// publishes most) opened during init, so the first message does not
    /// pay for it. Needs `sqs:GetQueueAttributes` on that queue.
    pub fn publisher_warmed_for(&self, queue: &str) -> OutboxPublisher {
        let publisher = self.publisher();
        let (warming, queue) = (publisher.clone(), queue.to_owned());
        self.warm_ups.start(async move { warming.warm_up(&queue).await });
        publisher
    }

    /// Runs `work` during init, at once with init's other reads: the serving
    /// loop waits for it before the first event. For a function's own warm-up (a read
    /// its first request would otherwise wait for); `work` deals with its
    /// own failure.
    pub fn warm_up(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.warm_ups.start(work);
    }

    /// Claims on queue messages, held for the function's claim duration.
    pub fn message_claims(&self) -> DynamoMessageClaims {
        DynamoMessageClaims::new(self.table(), self.settings.budget().claim_duration())
    }

    /// The batch processor for a consumer of `event_type` events, parking
    /// poison messages in that queue's dead-letter queue.
    pub fn batch(&self, event_type: &'static str) -> anyhow::Result<BatchProcessor> {
        let queue_url = self
            .shop
            .dead_letter_urls
            .get(event_type)
            .with_context(|| format!("no dead-letter queue URL configured for {event_type}"))?
            .clone();
        let dead_letters = Arc::new(SqsDeadLetters { sqs: self.sqs(), queue_url });
        let claims = Arc::new(self.message_claims());
        Ok(BatchProcessor::new(self.name, event_type, self.settings.budget(), dead_letters, claims)
            .after_warm_ups(self.warm_ups.clone()))
    }

    /// Sends email through SES from `SENDER_EMAIL`; an error if it is not set.
    pub fn mailer(&self) -> anyhow::Result<SesMailer> {
        anyhow::ensure!(!self.shop.sender_email.is_empty(), "SENDER_EMAIL is not set");
        Ok(SesMailer::new(self.sesv2(), self.shop.sender_email.clone()))
    }

    /// A throttle counting attempts against `limit` in the table.
    pub fn throttle(&self, limit: Limit) -> FixedWindow {
        FixedWindow::new(self.table(), limit.name, limit.attempts, limit.window)
    }

    /// The sign-in history `history` in the table.
    pub fn sign_in_history(&self, history: History) -> DynamoSignInHistory {
        DynamoSignInHistory::new(self.table(), history.name, history.ttl)
    }

    /// The public token keys, read during init so the first request finds
    /// them cached.
    pub fn public_keys(&self) -> anyhow::Result<Arc<PublicKeys>> {
        let keys = self.public_keys_on_first_use()?;
        self.read_during_init(&keys, "public keys");
        Ok(keys)
    }

    /// The public token keys without reading them during init: for a public
    /// read whose callers mostly send no token (`GET /products/{id}`), so a
    /// guest's cold start does not wait on Secrets Manager; the first request
    /// with a token reads them.
    pub fn public_keys_on_first_use(&self) -> anyhow::Result<Arc<PublicKeys>> {
        Ok(Arc::new(PublicKeys::from_secrets_manager(
            self.secrets_manager(),
            required_id("TOKEN_PUBLIC_KEYS_SECRET_ID", &self.settings.token_public_keys_secret_id)?,
            self.settings.key_cache_ttl,
        )))
    }

    /// Access tokens verified with `public`, issuing none.
    pub fn tokens(&self, public: &Arc<PublicKeys>) -> Tokens {
        Tokens::new(public.clone(), self.settings.token_ttl)
    }

    /// Access tokens signed with the private token keys, read during init:
    /// only the functions that issue tokens (login, refresh) may call this,
    /// and only their roles may read that secret.
    pub fn token_issuer(&self) -> anyhow::Result<Tokens> {
        let private = Arc::new(PrivateKeys::from_secrets_manager(
            self.secrets_manager(),
            required_id("TOKEN_SIGNING_KEY_SECRET_ID", &self.settings.token_signing_key_secret_id)?,
            self.settings.key_cache_ttl,
        ));
        self.read_during_init(&private, "signing keys");
        Ok(Tokens::issuing(private, self.public_keys_on_first_use()?, self.settings.token_ttl))
    }

    /// The token key secrets, for the rotation.
    pub fn token_key_secrets(&self) -> anyhow::Result<crate::token_keys::TokenKeySecrets> {
        Ok(crate::token_keys::TokenKeySecrets::new(
            self.secrets_manager(),
            required_id("TOKEN_SIGNING_KEY_SECRET_ID", &self.settings.token_signing_key_secret_id)?,
            required_id("TOKEN_PUBLIC_KEYS_SECRET_ID", &self.settings.token_public_keys_secret_id)?,
        ))
    }

    /// What a listing function reads during init: the public token keys and
    /// the cursor key.
    pub fn public_keys_and_cursors(&self) -> anyhow::Result<(Arc<PublicKeys>, Cursors)> {
        Ok((self.public_keys()?, self.cursors()?))
    }

    /// Pagination cursors sealed with the cursor key, read during init.
    pub fn cursors(&self) -> anyhow::Result<Cursors> {
        let keys = Arc::new(CursorKeys::from_secrets_manager(
            self.secrets_manager(),
            required_id("CURSOR_KEY_SECRET_ID", &self.settings.cursor_key_secret_id)?,
            self.settings.key_cache_ttl,
        ));
        self.read_during_init(&keys, "the cursor key");
        Ok(Cursors::new(keys))
    }

    /// Reads `keys` (named `what` in the log) during init, at once with the
    /// other warm-ups, so the first request finds them cached. Not fatal:
    /// a failure is logged, and the first request that needs them reads
    /// again (and answers 503 if the secret is still unreachable).
    fn read_during_init<K: SecretValue>(&self, keys: &Arc<SecretCache<K>>, what: &'static str) {
        let warming = keys.clone();
        self.warm_ups.start(async move {
            if let Err(error) = warming.current().await {
                tracing::warn!(
                    error = framework::telemetry::chain(error.as_ref()),
                    "could not read {what} during init"
                );
            }
        });
    }

    /// Token checks, with the stored account where it matters (writes, admins).
    pub fn authenticator(&self, keys: &Arc<PublicKeys>) -> Authenticator {
        Authenticator::new(self.tokens(keys), Arc::new(self.user_store()))
    }

    /// The HTTP layer for this function, admitting the callers `access`
    /// names (a level that reads tokens carries its [`Init::authenticator`]).
    /// The per-client request limit is not here: WAF (cloud) and the local
    /// API front (locally) enforce it.
    pub fn http(&self, access: Access) -> HttpServer {
        HttpServer::new(self.name, access, &self.settings).after_warm_ups(self.warm_ups.clone())
    }
}

impl Init {
    /// Hands the process over to the Lambda runtime for a scheduled function
    /// (see [`framework::runtime::serve_scheduled`]).
    pub async fn serve_scheduled<W, F>(&self, work: W) -> Result<(), lambda_runtime::Error>
    where
        W: Fn() -> F + Send + Sync + 'static,
        F: std::future::Future<Output = anyhow::Result<serde_json::Value>> + Send,
    {
        self.warm_ups.finish().await;
        framework::runtime::serve_scheduled(self.name, work).await
    }
}

/// A secret id from the environment, or why the function cannot start.
fn required_id(variable: &str, value: &str) -> anyhow::Result<String> {
    anyhow::ensure!(!value.is_empty(), "{variable} is not set");
    Ok(value.to_owned())
}
