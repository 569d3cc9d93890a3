//! The DynamoDB adapters against DynamoDB Local, each test on its own fresh
//! table created from the template's definition; the outbox and the
//! dead-letter helpers against moto; and the local cloud against the template.

mod contract;
mod dlq;
mod listings;
mod outbox;
mod provisioned;

use local_cloud::template::Template;

/// A new, empty table shaped exactly like the template's `Table`.
pub async fn fresh_table() -> adapters::dynamo::Table {
    tests::helpers::require_local_cloud();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let template = Template::load_project().unwrap();
    let resources = template.resources_of_kind("AWS::DynamoDB::Table");
    let table = resources.iter().find(|r| r.logical_id == "Table").expect("template declares Table");
    let name = format!("store-test-{}", ulid::Ulid::new());
    local_cloud::cloud::create_table(&client, table, &name).await.unwrap();
    adapters::dynamo::Table::new(client, name)
}
