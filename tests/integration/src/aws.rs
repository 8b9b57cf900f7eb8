//! moto (started by the test command): DynamoDB tables with the template's key schemas, the
//! archive bucket, secrets.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

/// moto's endpoint; the test command starts moto and sets this.
pub fn moto_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `make test`, which starts moto")
    })
}

/// AWS configuration pointing every service at moto, with dummy credentials.
pub async fn aws() -> SdkConfig {
    aws_at(&moto_endpoint()).await
}

/// AWS configuration pointing every service at `endpoint`, with dummy credentials.
pub async fn aws_at(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .test_credentials()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap()
}

fn attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

/// Creates a table with the template's key schema under a unique name.
pub async fn create_table(sdk: &SdkConfig) -> String {
    let name = format!("wxinvoice-test-{}", uuid::Uuid::new_v4().simple());
    create_table_named(sdk, &name).await;
    name
}

/// The token table's schema: `pk`, and the sweep's index (`due`: `sweep`, `due_ms`, keys only).
/// Claim tables are made alike (an index nothing writes to costs nothing).
pub async fn create_table_named(sdk: &SdkConfig, name: &str) {
    let due = GlobalSecondaryIndex::builder()
        .index_name("due")
        .key_schema(key("sweep", KeyType::Hash))
        .key_schema(key("due_ms", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .unwrap();
    let due_ms = AttributeDefinition::builder()
        .attribute_name("due_ms")
        .attribute_type(ScalarAttributeType::N)
        .build()
        .unwrap();
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sweep"))
        .attribute_definitions(due_ms)
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(due)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table in moto");
}

/// An S3 client of moto (path-style addressing).
pub fn s3(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// Creates an audit table (the template's key schema) and an archive bucket under unique names.
pub async fn create_audit_and_archive(sdk: &SdkConfig) -> (String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (table, bucket) = (
        format!("wxinvoice-audit-{id}"),
        format!("wxinvoice-archive-{id}"),
    );
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(&table)
        .attribute_definitions(attr("card_id"))
        .attribute_definitions(attr("at"))
        .key_schema(key("card_id", KeyType::Hash))
        .key_schema(key("at", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create the audit table in moto");
    s3(sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create the archive bucket in moto");
    (table, bucket)
}

/// Every object of a bucket: (key, bytes).
pub async fn objects(sdk: &SdkConfig, bucket: &str) -> Vec<(String, Vec<u8>)> {
    let s3 = s3(sdk);
    let list = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    let mut out = Vec::new();
    for o in list.contents.unwrap_or_default() {
        let key = o.key.unwrap();
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        out.push((
            key,
            body.body.collect().await.unwrap().into_bytes().to_vec(),
        ));
    }
    out
}

/// Creates a secret in (moto's) Secrets Manager; answers its ARN.
pub async fn create_secret(sdk: &SdkConfig, name: &str, value: &str) -> String {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("create the secret in moto")
        .arn
        .expect("an ARN")
}

/// Stores a new value of a secret.
pub async fn put_secret(sdk: &SdkConfig, name: &str, value: &str) {
    aws_sdk_secretsmanager::Client::new(sdk)
        .put_secret_value()
        .secret_id(name)
        .secret_string(value)
        .send()
        .await
        .expect("put the secret's value in moto");
}

/// Creates an SQS queue (the rotation queue) under a unique name; its URL.
pub async fn create_queue(sdk: &SdkConfig) -> String {
    let name = format!("wxinvoice-rotation-{}", uuid::Uuid::new_v4().simple());
    let out = aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create queue in moto");
    out.queue_url.expect("a queue URL")
}

/// Every message visible on the queue now, received (not deleted), as (message id, body).
pub async fn receive_all(sdk: &SdkConfig, url: &str) -> Vec<(String, String)> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut messages = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .send()
            .await
            .expect("receive from moto");
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            return messages;
        }
        for m in batch {
            messages.push((m.message_id.unwrap_or_default(), m.body.unwrap_or_default()));
        }
    }
}

/// An SQS event of the rotation queue, as Lambda's event source mapping delivers `messages`.
pub fn sqs_event(messages: &[(String, String)]) -> String {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|(id, body)| {
            serde_json::json!({
                "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:rotation",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}
