//! The local cloud: DynamoDB Local and moto (SQS, Secrets Manager, SES),
//! started on given ports and provisioned from `template.yaml`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use rand::Rng;
use serde_yaml::Value;

use crate::procs::Service;
use crate::template::{LocalNames, Resource, Template};
use crate::tools::Tools;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub dynamodb: u16,
    pub moto: u16,
}

/// How to run one local cloud.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    pub ports: Ports,
    /// Physical names are `<prefix>-<LogicalId>`.
    pub prefix: String,
    /// Keep DynamoDB data in this folder across runs (dev); in memory if `None` (tests).
    pub dynamodb_data: Option<PathBuf>,
    pub logs_dir: PathBuf,
}

/// A running local cloud. Dropping it stops every process it started.
pub struct LocalCloud {
    pub config: CloudConfig,
    pub names: Names,
    services: Vec<Service>,
}

impl LocalCloud {
    pub fn start(tools: &Tools, config: CloudConfig) -> anyhow::Result<Self> {
        let mut dynamodb = Command::new("java");
        // DynamoDB Local writes a metadata file where it runs: keep it with the logs.
        std::fs::create_dir_all(&config.logs_dir)?;
        dynamodb
            .current_dir(&config.logs_dir)
            .arg(format!("-Djava.library.path={}", tools.dynamodb_dir.join("DynamoDBLocal_lib").display()))
            .arg("-jar")
            .arg(tools.dynamodb_dir.join("DynamoDBLocal.jar"))
            .args(["-port", &config.ports.dynamodb.to_string(), "-sharedDb"]);
        match &config.dynamodb_data {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                dynamodb.arg("-dbPath").arg(dir);
            }
            None => {
                dynamodb.arg("-inMemory");
            }
        }
        let mut dynamodb = Service::start("DynamoDB Local", dynamodb, Some(config.logs_dir.join("dynamodb.log")))?;

        let mut moto = Command::new(tools.venv_bin.join("moto_server"));
        moto.args(["-H", "127.0.0.1", "-p", &config.ports.moto.to_string()]);
        let mut moto = Service::start("moto", moto, Some(config.logs_dir.join("moto.log")))?;

        dynamodb.wait_for_port(config.ports.dynamodb, Duration::from_secs(60))?;
        moto.wait_for_port(config.ports.moto, Duration::from_secs(60))?;
        let names = Names {
            prefix: config.prefix.clone(),
            moto_endpoint: format!("http://127.0.0.1:{}", config.ports.moto),
            parameters: BTreeMap::from([
                // A local front end (e.g. `npm run dev`) may call the API.
                ("CorsAllowedOrigins".to_owned(), "http://localhost:3000".to_owned()),
                // `cargo lambda watch` reports every caller as 127.0.0.1; locally the
                // client's address comes from X-Forwarded-For instead.
                ("ClientIpHeader".to_owned(), "x-forwarded-for".to_owned()),
            ]),
        };
        Ok(Self { config, names, services: vec![dynamodb, moto] })
    }

    pub fn dynamodb_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.config.ports.dynamodb)
    }

    pub fn moto_endpoint(&self) -> String {
        self.names.moto_endpoint.clone()
    }

    /// The variables that point an AWS SDK (or CLI) at this local cloud.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        let moto = self.moto_endpoint();
        [
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.dynamodb_endpoint()),
            ("AWS_ENDPOINT_URL_SQS", moto.clone()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.clone()),
            ("AWS_ENDPOINT_URL_SESV2", moto),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Every variable a function needs locally: SDK endpoints plus the
    /// template's own environment, resolved to local names.
    pub fn function_env(&self, template: &Template) -> anyhow::Result<Vec<(String, String)>> {
        let mut env = self.aws_env();
        env.extend(template.function_environment(&self.names)?);
        Ok(env)
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(&base_sdk_config().await)
            .endpoint_url(self.dynamodb_endpoint())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    pub async fn sesv2(&self) -> aws_sdk_sesv2::Client {
        let config =
            aws_sdk_sesv2::config::Builder::from(&base_sdk_config().await).endpoint_url(self.moto_endpoint()).build();
        aws_sdk_sesv2::Client::from_conf(config)
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        let config =
            aws_sdk_sqs::config::Builder::from(&base_sdk_config().await).endpoint_url(self.moto_endpoint()).build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    async fn create_queue(
        &self,
        sqs: &aws_sdk_sqs::Client,
        template: &Template,
        queue: &Resource<'_>,
    ) -> anyhow::Result<()> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let name = self.names.physical(queue.logical_id);
        let mut request = sqs.create_queue().queue_name(&name);
        for (property, attribute) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
            ("DelaySeconds", QueueAttributeName::DelaySeconds),
        ] {
            let value = &queue.properties[property];
            if !value.is_null() {
                request = request.attributes(attribute, template.resolve(queue.stack, value, &self.names)?);
            }
        }
        let redrive = &queue.properties["RedrivePolicy"];
        if !redrive.is_null() {
            let target = template.resolve(queue.stack, &redrive["deadLetterTargetArn"], &self.names)?;
            let max = template.resolve(queue.stack, &redrive["maxReceiveCount"], &self.names)?;
            let policy = serde_json::json!({"deadLetterTargetArn": target, "maxReceiveCount": max.parse::<u32>()?});
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))
            .with_context(|| format!("creating queue {name}"))?;
        Ok(())
    }

    pub async fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        let config = aws_sdk_secretsmanager::config::Builder::from(&base_sdk_config().await)
            .endpoint_url(self.moto_endpoint())
            .build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    }

    /// Creates every table, queue, secret and email identity the template declares.
    pub async fn provision(&self, template: &Template) -> anyhow::Result<()> {
        let dynamodb = self.dynamodb().await;
        for table in template.resources_of_kind("AWS::DynamoDB::Table") {
            let name = self.names.reference(&table.stack.logical_id, table.logical_id, table.kind)?;
            create_table(&dynamodb, &table, &name).await?;
        }
        // Dead-letter queues first: the queues' redrive policies point at them.
        let sqs = self.sqs().await;
        let mut queues = template.resources_of_kind("AWS::SQS::Queue");
        queues.sort_by_key(|q| !q.properties["RedrivePolicy"].is_null());
        for queue in queues {
            self.create_queue(&sqs, template, &queue).await?;
        }
        let ses = self.sesv2().await;
        for identity in template.resources_of_kind("AWS::SES::EmailIdentity") {
            let name = template.resolve(identity.stack, &identity.properties["EmailIdentity"], &self.names)?;
            match ses.create_email_identity().email_identity(&name).send().await {
                Ok(_) => {}
                Err(error) if error.as_service_error().is_some_and(aws_sdk_sesv2::operation::create_email_identity::CreateEmailIdentityError::is_already_exists_exception) => {}
                Err(error) => {
                    return Err(anyhow::anyhow!("{}", aws_sdk_sesv2::error::DisplayErrorContext(error)))
                        .with_context(|| format!("creating email identity {name}"));
                }
            }
        }
        let secrets = self.secrets_manager().await;
        for secret in template.resources_of_kind("AWS::SecretsManager::Secret") {
            let name = self.names.reference(&secret.stack.logical_id, secret.logical_id, secret.kind)?;
            create_secret(&secrets, &secret, &name).await?;
        }
        // The token keys come from the rotation function in the cloud; here
        // the same code creates them now, so the first login finds them.
        let private = template
            .resources_of_kind("AWS::SecretsManager::Secret")
            .into_iter()
            .find(|s| s.logical_id == "TokenSigningKeySecret");
        let public = template
            .resources_of_kind("AWS::SecretsManager::Secret")
            .into_iter()
            .find(|s| s.logical_id == "TokenPublicKeysSecret");
        if let (Some(private), Some(public)) = (private, public) {
            let keys = adapters::token_keys::TokenKeySecrets::new(
                secrets.clone(),
                self.names.reference(&private.stack.logical_id, private.logical_id, private.kind)?,
                self.names.reference(&public.stack.logical_id, public.logical_id, public.kind)?,
            );
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            keys.rotate_when_due(now, adapters::token_keys::ROTATION_PERIOD)
                .await
                .context("creating the token keys")?;
        }
        Ok(())
    }

    /// Stops every process (also done on drop).
    pub fn stop(mut self) {
        self.services.clear();
    }
}

/// Region and dummy credentials; endpoints are set per client below, the
/// way `AWS_ENDPOINT_URL_<SERVICE>` sets them for the functions.
pub async fn base_sdk_config() -> aws_config::SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "local-cloud");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(credentials)
        .load()
        .await
}

/// Names in a local cloud: `<prefix>-<LogicalId>`, with moto's URL and ARN shapes.
#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
    pub moto_endpoint: String,
    pub parameters: BTreeMap<String, String>,
}

impl Names {
    pub fn physical(&self, logical_id: &str) -> String {
        format!("{}-{logical_id}", self.prefix)
    }
}

impl LocalNames for Names {
    fn reference(&self, _stack: &str, logical_id: &str, kind: &str) -> anyhow::Result<String> {
        let name = self.physical(logical_id);
        Ok(match kind {
            "AWS::SQS::Queue" => format!("{}/{ACCOUNT}/{name}", self.moto_endpoint),
            "AWS::DynamoDB::Table" | "AWS::SecretsManager::Secret" | "AWS::SNS::Topic" => name,
            other => bail!("!Ref of a {other} is not supported locally"),
        })
    }

    fn attribute(&self, _stack: &str, logical_id: &str, kind: &str, attribute: &str) -> anyhow::Result<String> {
        let name = self.physical(logical_id);
        Ok(match (kind, attribute) {
            ("AWS::SQS::Queue", "Arn") => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"),
            ("AWS::SQS::Queue", "QueueUrl") => format!("{}/{ACCOUNT}/{name}", self.moto_endpoint),
            ("AWS::DynamoDB::Table", "Arn") => format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"),
            // Locally the secret's name stands in for its ARN; both are valid ids.
            ("AWS::SecretsManager::Secret", "Id") | ("AWS::SQS::Queue", "QueueName") => name,
            (kind, attribute) => bail!("!GetAtt {attribute} of a {kind} is not supported locally"),
        })
    }

    fn parameter(&self, _stack: &str, name: &str) -> Option<String> {
        self.parameters.get(name).cloned()
    }
}

fn text(value: &Value, what: &str) -> anyhow::Result<String> {
    value.as_str().map(str::to_owned).with_context(|| format!("{what} must be a plain string"))
}

fn key_schema(value: &Value) -> anyhow::Result<Vec<KeySchemaElement>> {
    let mut keys = Vec::new();
    for key in value.as_sequence().context("KeySchema must be a list")? {
        keys.push(
            KeySchemaElement::builder()
                .attribute_name(text(&key["AttributeName"], "AttributeName")?)
                .key_type(KeyType::from(text(&key["KeyType"], "KeyType")?.as_str()))
                .build()?,
        );
    }
    Ok(keys)
}

/// Creates the table `resource` describes, under `name`. An existing table
/// (a dev stack restarted on kept data) is left as it is.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    resource: &Resource<'_>,
    name: &str,
) -> anyhow::Result<()> {
    let properties = resource.properties;
    if properties["BillingMode"].as_str() != Some("PAY_PER_REQUEST") {
        bail!("table {}: only on-demand (PAY_PER_REQUEST) tables are supported", resource.logical_id);
    }
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&properties["KeySchema"])?));
    for attribute in properties["AttributeDefinitions"].as_sequence().context("AttributeDefinitions")? {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(&attribute["AttributeName"], "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(text(&attribute["AttributeType"], "AttributeType")?.as_str()))
                .build()?,
        );
    }
    for index in properties["GlobalSecondaryIndexes"].as_sequence().into_iter().flatten() {
        let projection = &index["Projection"];
        let non_key: Option<Vec<String>> = projection["NonKeyAttributes"]
            .as_sequence()
            .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect());
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(&index["IndexName"], "IndexName")?)
                .set_key_schema(Some(key_schema(&index["KeySchema"])?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(projection["ProjectionType"].as_str().unwrap_or("ALL")))
                        .set_non_key_attributes(non_key)
                        .build(),
                )
                .build()?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(error)
            if error.as_service_error().is_some_and(
                aws_sdk_dynamodb::operation::create_table::CreateTableError::is_resource_in_use_exception,
            ) =>
        {
            return Ok(());
        }
        Err(error) => {
            return Err(anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(error)))
                .with_context(|| format!("creating table {name}"));
        }
    }
    if let Some(ttl) = properties["TimeToLiveSpecification"].as_mapping() {
        let attribute = ttl.get("AttributeName").and_then(Value::as_str).context("TTL AttributeName")?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().attribute_name(attribute).enabled(true).build()?,
            )
            .send()
            .await
            .with_context(|| format!("enabling TTL on {name}"))?;
    }
    Ok(())
}

/// Creates a secret the way CloudFormation would: `SecretStringTemplate`
/// with `GenerateStringKey` set to a fresh random string.
async fn create_secret(
    client: &aws_sdk_secretsmanager::Client,
    resource: &Resource<'_>,
    name: &str,
) -> anyhow::Result<()> {
    let generate = &resource.properties["GenerateSecretString"];
    let value = if generate.is_mapping() {
        let template = generate["SecretStringTemplate"].as_str().unwrap_or("{}");
        let mut json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(template).context("SecretStringTemplate must be a JSON object")?;
        let key = text(&generate["GenerateStringKey"], "GenerateStringKey")?;
        let length = generate["PasswordLength"].as_u64().unwrap_or(32) as usize;
        let generated: String =
            rand::rng().sample_iter(rand::distr::Alphanumeric).take(length).map(char::from).collect();
        json.insert(key, serde_json::Value::String(generated));
        serde_json::Value::Object(json).to_string()
    } else {
        text(&resource.properties["SecretString"], "SecretString")?
    };
    match client.create_secret().name(name).secret_string(value).send().await {
        Ok(_) => Ok(()),
        Err(error)
            if error.as_service_error().is_some_and(
                aws_sdk_secretsmanager::operation::create_secret::CreateSecretError::is_resource_exists_exception,
            ) =>
        {
            Ok(())
        }
        Err(error) => Err(anyhow::anyhow!("{}", aws_sdk_secretsmanager::error::DisplayErrorContext(error)))
            .with_context(|| format!("creating secret {name}")),
    }
}
