//! Reading and writing item attributes, with errors instead of panics when a
//! stored item is not what the code expects.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::ports::StoreError;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn timestamp(value: OffsetDateTime) -> AttributeValue {
    AttributeValue::S(value.format(&Rfc3339).expect("UTC timestamps always format"))
}

fn corrupt(name: &str) -> StoreError {
    StoreError::Failed(format!("stored item has a missing or malformed `{name}`").into())
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).ok_or_else(|| corrupt(name))
}

pub(crate) fn get_u64(item: &Item, name: &str) -> Result<u64, StoreError> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).ok_or_else(|| corrupt(name))
}

pub(crate) fn get_bool(item: &Item, name: &str) -> Result<bool, StoreError> {
    item.get(name).and_then(|v| v.as_bool().ok()).copied().ok_or_else(|| corrupt(name))
}

pub(crate) fn get_timestamp(item: &Item, name: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(get_s(item, name)?, &Rfc3339).map_err(|_| corrupt(name))
}

/// Reads a value that went through a domain parser when it was written; a
/// failure here means the stored data is corrupt, not that input was bad.
pub(crate) fn parsed<T, E>(item: &Item, name: &str, parse: impl Fn(&str) -> Result<T, E>) -> Result<T, StoreError> {
    parse(get_s(item, name)?).map_err(|_| corrupt(name))
}
