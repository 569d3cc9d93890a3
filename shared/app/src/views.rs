//! Response shapes. Each maps a domain type to exactly what clients may see.

use domain::{Money, Order, Product, User, UserProfile};
use serde::Serialize;
use time::OffsetDateTime;

/// A user as the API shows it: never the password hash.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub role: &'static str,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
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

#[derive(Debug, Serialize)]
pub struct MoneyView {
    pub amount_minor: u64,
    pub currency: String,
}

impl From<&Money> for MoneyView {
    fn from(money: &Money) -> Self {
        Self { amount_minor: money.minor(), currency: money.currency().to_string() }
    }
}

#[derive(Debug, Serialize)]
pub struct ProductView {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: MoneyView,
    pub stock: u32,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
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

#[derive(Debug, Serialize)]
pub struct OrderLineView {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price: MoneyView,
}

#[derive(Debug, Serialize)]
pub struct OrderView {
    pub id: String,
    pub owner_id: String,
    pub lines: Vec<OrderLineView>,
    pub total: MoneyView,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub version: u64,
}

impl From<&Order> for OrderView {
    fn from(order: &Order) -> Self {
        Self {
            id: order.id.to_string(),
            owner_id: order.owner.to_string(),
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
