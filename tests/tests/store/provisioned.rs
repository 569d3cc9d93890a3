//! The local cloud holds exactly what template.yaml declares.

use std::collections::BTreeMap;

use local_cloud::template::Template;

#[tokio::test]
async fn the_local_cloud_holds_what_the_template_declares() {
    let prefix = tests::helpers::env("SHOP_LOCAL_PREFIX");
    let template = Template::load_project().unwrap();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;

    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let tables = template.resources_of_kind("AWS::DynamoDB::Table");
    assert!(!tables.is_empty());
    for resource in tables {
        let name = format!("{prefix}-{}", resource.logical_id);
        let described = dynamodb.describe_table().table_name(&name).send().await.unwrap();
        let table = described.table().unwrap();
        let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<(String, String)> {
            schema.iter().map(|k| (k.attribute_name().to_owned(), k.key_type().as_str().to_owned())).collect()
        };
        let declared_keys = |value: &serde_yaml::Value| -> Vec<(String, String)> {
            value
                .as_sequence()
                .unwrap()
                .iter()
                .map(|k| (k["AttributeName"].as_str().unwrap().to_owned(), k["KeyType"].as_str().unwrap().to_owned()))
                .collect()
        };
        assert_eq!(keys(table.key_schema()), declared_keys(&resource.properties["KeySchema"]), "{name}");
        let indexes: BTreeMap<String, Vec<(String, String)>> = table
            .global_secondary_indexes()
            .iter()
            .map(|i| (i.index_name().unwrap().to_owned(), keys(i.key_schema())))
            .collect();
        let declared: BTreeMap<String, Vec<(String, String)>> = resource.properties["GlobalSecondaryIndexes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|i| (i["IndexName"].as_str().unwrap().to_owned(), declared_keys(&i["KeySchema"])))
            .collect();
        assert_eq!(indexes, declared, "{name}");
        let ttl = dynamodb.describe_time_to_live().table_name(&name).send().await.unwrap();
        let ttl_attribute = ttl.time_to_live_description().and_then(|d| d.attribute_name()).map(str::to_owned);
        let declared_ttl = resource.properties["TimeToLiveSpecification"]["AttributeName"].as_str().map(str::to_owned);
        assert_eq!(ttl_attribute, declared_ttl, "{name}");
    }

    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    for resource in template.resources_of_kind("AWS::SecretsManager::Secret") {
        let name = format!("{prefix}-{}", resource.logical_id);
        let value = secrets.get_secret_value().secret_id(&name).send().await.unwrap();
        let json: serde_json::Value = serde_json::from_str(value.secret_string().unwrap()).unwrap();
        // A generated secret holds its key; the token key sets (declared
        // "{}", filled by the rotation code) only need to exist as JSON.
        if let Some(key) = resource.properties["GenerateSecretString"]["GenerateStringKey"].as_str() {
            assert!(json[key].as_str().is_some_and(|k| k.len() >= 32), "{name}: generated key present");
        }
    }
}
