//! The catalogue's products: SKUs, bounded text and stock, and the drafts
//! admins create and replace products from.

use std::fmt;

use time::OffsetDateTime;

use crate::{Money, ProductId, ValidationError};

/// A stock-keeping unit: 3 to 32 of A-Z, 0-9 and '-', stored upper-case so
/// one SKU has one spelling.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Sku(String);

impl Sku {
    /// Trims and upper-cases, then checks the shape; errors name the field `sku`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let sku = raw.trim().to_ascii_uppercase();
        let valid_chars = sku.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
        if !(3..=32).contains(&sku.len()) || !valid_chars || sku.starts_with('-') || sku.ends_with('-') {
            return Err(ValidationError::field("sku", "must be 3 to 32 letters, digits or inner dashes"));
        }
        Ok(Self(sku))
    }
}

impl AsRef<str> for Sku {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sku({})", self.0)
    }
}

/// Text with bounds: a product's name (required) or description (optional).
fn bounded_text(raw: &str, field: &str, max: usize, required: bool) -> Result<String, ValidationError> {
    let text = raw.trim();
    if required && text.is_empty() {
        return Err(ValidationError::field(field, "is required"));
    }
    if text.chars().count() > max {
        return Err(ValidationError::field(field, format!("must be at most {max} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ValidationError::field(field, "must not contain control characters"));
    }
    Ok(text.to_owned())
}

/// The most units an admin may set a product's stock to. Only admin input is
/// held to it: a cancelled order's stock is given back uncapped.
pub const MAX_STOCK: u32 = 1_000_000;

/// A stock level from a client: a whole number from 0 to [`MAX_STOCK`];
/// errors name the field `stock`.
pub fn parse_stock(raw: i64) -> Result<u32, ValidationError> {
    u32::try_from(raw)
        .ok()
        .filter(|stock| *stock <= MAX_STOCK)
        .ok_or_else(|| ValidationError::field("stock", "must be a whole number from 0 to 1000000"))
}

/// A catalogue entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// Assigned at creation; kept by every replace.
    pub id: ProductId,
    /// Unique across the catalogue.
    pub sku: Sku,
    /// Trimmed, 1 to 200 characters; no control characters but newlines.
    pub name: String,
    /// Trimmed, at most 2000 characters (empty if none); no control
    /// characters but newlines.
    pub description: String,
    /// The price of one unit; orders copy it when placed.
    pub price: Money,
    /// Units on hand. Cannot be negative: it is unsigned, and every decrement
    /// is conditional in the store.
    pub stock: u32,
    /// Inactive products stay in the catalogue for admins but cannot be ordered.
    pub active: bool,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was last replaced or its stock last changed.
    pub updated_at: OffsetDateTime,
    /// 1 at creation, bumped on every change (stock included); the basis of
    /// `ETag` and `If-Match`.
    pub version: u64,
}

/// What an admin provides to create or replace a product.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductDraft {
    /// Must not be another product's.
    pub sku: Sku,
    /// Trimmed, 1 to 200 characters.
    pub name: String,
    /// Trimmed, at most 2000 characters; empty when none was given.
    pub description: String,
    /// The price of one unit.
    pub price: Money,
    /// Units on hand, at most [`MAX_STOCK`].
    pub stock: u32,
    /// Whether customers can see and order it; `true` unless the admin said otherwise.
    pub active: bool,
}

impl ProductDraft {
    /// Parses every field, reporting all bad ones at once.
    pub fn parse(
        sku: &str,
        name: &str,
        description: Option<&str>,
        price_minor: i64,
        currency: &str,
        stock: i64,
        active: Option<bool>,
    ) -> Result<Self, ValidationError> {
        let mut errors = ValidationError::default();
        let sku = errors.collect(Sku::parse(sku));
        let name = errors.collect(bounded_text(name, "name", 200, true));
        let description = errors.collect(bounded_text(description.unwrap_or_default(), "description", 2000, false));
        let currency = errors.collect(crate::Currency::parse(currency));
        let minor = errors
            .collect(u64::try_from(price_minor).map_err(|_| ValidationError::field("price", "must not be negative")));
        let stock = errors.collect(parse_stock(stock));
        let price = match (minor, currency) {
            (Some(minor), Some(currency)) => errors.collect(Money::new(minor, currency)),
            _ => None,
        };
        match (sku, name, description, price, stock) {
            (Some(sku), Some(name), Some(description), Some(price), Some(stock)) => {
                Ok(Self { sku, name, description, price, stock, active: active.unwrap_or(true) })
            }
            _ => Err(errors),
        }
    }

    /// A new product (fresh id, version 1) created at `now`.
    pub fn into_product(self, now: OffsetDateTime) -> Product {
        Product {
            id: ProductId::generate(),
            sku: self.sku,
            name: self.name,
            description: self.description,
            price: self.price,
            stock: self.stock,
            active: self.active,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }
}

impl Product {
    /// The product replaced by `draft` (PUT), as the next version.
    pub fn replaced(&self, draft: ProductDraft, now: OffsetDateTime) -> Product {
        Product {
            id: self.id,
            sku: draft.sku,
            name: draft.name,
            description: draft.description,
            price: draft.price,
            stock: draft.stock,
            active: draft.active,
            created_at: self.created_at,
            updated_at: now,
            version: self.version + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_normalised_and_bounded() {
        assert_eq!(Sku::parse(" tee-red-m ").unwrap().as_ref(), "TEE-RED-M");
        for bad in ["", "ab", "-ABC", "ABC-", "A B C", "ÄBC", &"A".repeat(33)] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn drafts_report_every_bad_field() {
        let error = ProductDraft::parse("x", "", None, -1, "euro", -5, None).unwrap_err();
        let fields: Vec<&str> = error.fields().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["sku", "name", "currency", "price", "stock"]);
    }

    #[test]
    fn a_valid_draft_becomes_an_active_product_at_version_one() {
        let draft = ProductDraft::parse("TEE-1", " Tee ", Some("Cotton"), 1999, "EUR", 5, None).unwrap();
        let product = draft.clone().into_product(OffsetDateTime::UNIX_EPOCH);
        assert_eq!((product.name.as_str(), product.active, product.version), ("Tee", true, 1));
        let replaced = product.replaced(ProductDraft { stock: 9, ..draft }, OffsetDateTime::now_utc());
        assert_eq!((replaced.id, replaced.stock, replaced.version), (product.id, 9, 2));
    }

    #[test]
    fn stock_is_never_negative() {
        assert!(parse_stock(-1).is_err());
        assert!(parse_stock(i64::from(MAX_STOCK) + 1).is_err());
        assert_eq!(parse_stock(0).unwrap(), 0);
    }
}
