//! Response shapes. Each maps a domain type to exactly what clients may see.

use domain::{Money, Order, Product, User, UserProfile};
use serde::Serialize;
use time::OffsetDateTime;

/// A user as the API shows it: never the password hash.
#[derive(Debug, Serialize)]
pub struct UserView {
    /// The account's ULID.
    pub id: String,
    /// The normalised address.
    pub email: String,
    /// `user` or `admin`.
    pub role: &'static str,
    /// Whether sign-in is refused.
    pub disabled: bool,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The version the ETag carries.
    pub version: u64,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self::from(&user.profile())
    }
}

impl From<&UserProfile> for UserView {
    fn from(user: &UserProfile) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.to_string(),
            role: user.role.as_str(),
            disabled: user.disabled,
            created_at: user.created_at,
            updated_at: user.updated_at,
            version: user.version,
        }
    }
}

/// An amount as the API shows it: integer minor units, never a float.
#[derive(Debug, Serialize)]
pub struct MoneyView {
    /// In minor units of `currency` (cents for EUR).
    pub amount_minor: u64,
    /// The ISO 4217 code, upper-case.
    pub currency: String,
}

impl From<&Money> for MoneyView {
    fn from(money: &Money) -> Self {
        Self { amount_minor: money.minor(), currency: money.currency().to_string() }
    }
}

/// A product as the API shows it.
#[derive(Debug, Serialize)]
pub struct ProductView {
    /// The product's ULID.
    pub id: String,
    /// Upper-case, unique across the catalogue.
    pub sku: String,
    /// As the admin gave it, trimmed.
    pub name: String,
    /// Empty when there is none.
    pub description: String,
    /// The price of one unit.
    pub price: MoneyView,
    /// Units on hand now.
    pub stock: u32,
    /// Whether customers can see and order it.
    pub active: bool,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The version the ETag carries.
    pub version: u64,
}

impl From<&Product> for ProductView {
    fn from(product: &Product) -> Self {
        Self {
            id: product.id.to_string(),
            sku: product.sku.to_string(),
            name: product.name.clone(),
            description: product.description.clone(),
            price: MoneyView::from(&product.price),
            stock: product.stock,
            active: product.active,
            created_at: product.created_at,
            updated_at: product.updated_at,
            version: product.version,
        }
    }
}

/// One line of an order as the API shows it: the product as it was when ordered.
#[derive(Debug, Serialize)]
pub struct OrderLineView {
    /// The product's ULID.
    pub product_id: String,
    /// Its SKU when ordered.
    pub sku: String,
    /// Its name when ordered.
    pub name: String,
    /// 1 to 1000 units.
    pub quantity: u32,
    /// The price of one unit when ordered.
    pub unit_price: MoneyView,
}

/// An order as the API shows it.
#[derive(Debug, Serialize)]
pub struct OrderView {
    /// The order's ULID.
    pub id: String,
    /// The customer who placed it; `null` once their account was erased
    /// (the order stays in the shop's books without anyone's identity).
    pub owner_id: Option<String>,
    /// Its lines, in the order the client sent them.
    pub lines: Vec<OrderLineView>,
    /// The sum of the lines.
    pub total: MoneyView,
    /// `pending`, `confirmed`, `rejected`, `shipped` or `cancelled`.
    pub status: &'static str,
    /// Why it was rejected; left out of the JSON otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The version the ETag carries.
    pub version: u64,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        Self {
            id: order.id.to_string(),
            owner_id: order.owner.map(|owner| owner.to_string()),
            lines: order
                .lines
                .iter()
                .map(|line| OrderLineView {
                    product_id: line.product_id.to_string(),
                    sku: line.sku.to_string(),
                    name: line.name.clone(),
                    quantity: line.quantity.get(),
                    unit_price: MoneyView::from(&line.unit_price),
                })
                .collect(),
            total: MoneyView::from(&order.total),
            status: order.status.as_str(),
            reason: order.reason.clone(),
            created_at: order.created_at,
            updated_at: order.updated_at,
            version: order.version,
        }
    }
}
