//! Creating the table from `template.yaml`, so the local and deployed tables are
//! defined once and cannot drift. Used by the dev stack and the tests, never by a
//! Lambda.

use super::StoreError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde_yaml::Value;

#[derive(Debug, thiserror::Error)]
pub enum TableDefinitionError {
    #[error("cannot read template: {0}")]
    Read(#[from] std::io::Error),
    #[error("cannot parse template: {0}")]
    Parse(#[from] serde_yaml::Error),
    #[error("template has no usable Resources.Table.Properties.{0}")]
    Missing(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn key_schema(v: &Value) -> Result<Vec<KeySchemaElement>, TableDefinitionError> {
    v.as_sequence()
        .ok_or(TableDefinitionError::Missing("KeySchema"))?
        .iter()
        .map(|k| {
            let name = k["AttributeName"].as_str().ok_or(TableDefinitionError::Missing("KeySchema.AttributeName"))?;
            let key_type = match k["KeyType"].as_str() {
                Some("HASH") => KeyType::Hash,
                Some("RANGE") => KeyType::Range,
                _ => return Err(TableDefinitionError::Missing("KeySchema.KeyType")),
            };
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(|_| TableDefinitionError::Missing("KeySchema"))
        })
        .collect()
}

/// Creates `table_name` with the keys, attributes and GSIs of `Resources.Table` in
/// the template text. An existing table is left as it is.
pub async fn create_from_template(
    client: &Client,
    template: &str,
    table_name: &str,
) -> Result<(), TableDefinitionError> {
    let doc: Value = serde_yaml::from_str(template)?;
    let props = &doc["Resources"]["Table"]["Properties"];
    let attrs = props["AttributeDefinitions"]
        .as_sequence()
        .ok_or(TableDefinitionError::Missing("AttributeDefinitions"))?
        .iter()
        .map(|a| {
            let name = a["AttributeName"].as_str().ok_or(TableDefinitionError::Missing("AttributeName"))?;
            let kind = match a["AttributeType"].as_str() {
                Some("S") => ScalarAttributeType::S,
                Some("N") => ScalarAttributeType::N,
                Some("B") => ScalarAttributeType::B,
                _ => return Err(TableDefinitionError::Missing("AttributeType")),
            };
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .map_err(|_| TableDefinitionError::Missing("AttributeDefinitions"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut gsis = Vec::new();
    for g in props["GlobalSecondaryIndexes"].as_sequence().into_iter().flatten() {
        let name = g["IndexName"].as_str().ok_or(TableDefinitionError::Missing("IndexName"))?;
        let projection = match g["Projection"]["ProjectionType"].as_str() {
            Some("KEYS_ONLY") => ProjectionType::KeysOnly,
            Some("INCLUDE") => ProjectionType::Include,
            _ => ProjectionType::All,
        };
        gsis.push(
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .set_key_schema(Some(key_schema(&g["KeySchema"])?))
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .map_err(|_| TableDefinitionError::Missing("GlobalSecondaryIndexes"))?,
        );
    }
    let mut create = client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attrs))
        .set_key_schema(Some(key_schema(&props["KeySchema"])?))
        .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis));
    if props["StreamSpecification"]["StreamViewType"].as_str() == Some("NEW_AND_OLD_IMAGES") {
        create = create.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(|_| TableDefinitionError::Missing("StreamSpecification"))?,
        );
    }
    match create.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => return Ok(()),
        Err(e) => return Err(StoreError::sdk("CreateTable", e).into()),
    }
    if let Some(ttl_attr) = props["TimeToLiveSpecification"]["AttributeName"].as_str() {
        client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ttl_attr)
                    .enabled(true)
                    .build()
                    .map_err(|_| TableDefinitionError::Missing("TimeToLiveSpecification"))?,
            )
            .send()
            .await
            .map_err(|e| StoreError::sdk("UpdateTimeToLive", e))?;
    }
    Ok(())
}
