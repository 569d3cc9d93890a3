//! Listings against DynamoDB Local at the edges: pages of large items that
//! cross DynamoDB's 1 MB response limit, and items that cannot be read.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::ports::{OrderFilter, OrderStore, StoreError};
use domain::{DomainEvent, Order, PageLimit, PageRequest, Product, ProductDraft, UserId};
use platform::dynamo::DynamoOrderStore;
use time::OffsetDateTime;

use crate::fresh_table;

/// A product with a long name, so each order line is large.
fn bulky_product(index: usize) -> Product {
    let name = format!("{index:03} {}", "a rather long product name ".repeat(7));
    ProductDraft::parse(&format!("BULK-{index:03}"), &name, None, 100, "EUR", 10, Some(true))
        .unwrap()
        .into_product(OffsetDateTime::now_utc())
}

/// An order of 50 bulky lines: about 16 KB stored.
fn bulky_order(owner: UserId, products: &[Product]) -> Order {
    let lines: Vec<(String, i64)> = products.iter().map(|p| (p.id.to_string(), 1)).collect();
    domain::OrderRequest::parse(&lines).unwrap().price(owner, products, OffsetDateTime::now_utc()).unwrap()
}

fn page(limit: &str, after: Option<String>) -> PageRequest {
    PageRequest { limit: PageLimit::parse(Some(limit)).unwrap(), after }
}

/// Regression (issue 8.5): a Query answers at most 1 MB; the listing took a
/// short answer for the end, returned fewer items and no next cursor, and
/// the older items became unreachable.
#[tokio::test]
async fn pages_of_large_items_cross_the_one_megabyte_limit_without_losing_anything() {
    // One owner with 130 open orders: far beyond the default hold caps.
    let roomy = domain::HoldLimits::new(1_000, 1_000).unwrap();
    let orders = DynamoOrderStore::new(fresh_table().await).with_limits(roomy);
    let owner = UserId::generate();
    let products: Vec<Product> = (0..50).map(bulky_product).collect();
    let mut placed = Vec::new();
    for _ in 0..130 {
        let order = bulky_order(owner, &products);
        orders
            .place(&order, &DomainEvent::order_placed(order.id, owner, "c", OffsetDateTime::now_utc()), None)
            .await
            .unwrap();
        placed.push(order.id);
    }
    let filter = OrderFilter { owner: Some(owner), status: None };
    let first = orders.list(filter, &page("100", None)).await.unwrap();
    assert_eq!(first.items.len(), 100, "a full page, though 100 items are more than 1 MB");
    assert!(first.next.is_some(), "and the way to the rest");
    let second = orders.list(filter, &page("100", first.next.clone())).await.unwrap();
    assert_eq!((second.items.len(), second.next.as_deref()), (30, None));
    let mut seen: Vec<_> = first.items.iter().chain(&second.items).map(|o| o.id).collect();
    seen.sort();
    placed.sort();
    assert_eq!(seen, placed, "every order once");
}

/// Regression (issue 8.6): one item the code could not read made the whole
/// listing a 500.
#[tokio::test]
async fn an_unreadable_item_is_left_out_of_a_listing_and_fails_only_its_own_read() {
    let table = fresh_table().await;
    let orders = DynamoOrderStore::new(table.clone());
    let owner = UserId::generate();
    let products = vec![bulky_product(1)];
    let good = bulky_order(owner, &products);
    orders
        .place(&good, &DomainEvent::order_placed(good.id, owner, "c", OffsetDateTime::now_utc()), None)
        .await
        .unwrap();
    // Written by hand as a bug or a bad migration might: the lines are not JSON.
    let broken = domain::OrderId::generate();
    let text = |value: &str| AttributeValue::S(value.to_owned());
    table
        .client()
        .put_item()
        .table_name(table.name())
        .item("pk", text(&format!("ORDER#{broken}")))
        .item("sk", text("ORDER"))
        .item("gsi1pk", text(&format!("ORDERS#OWNER#{owner}")))
        .item("gsi1sk", text(&broken.to_string()))
        .item("id", text(&broken.to_string()))
        .item("owner", text(&owner.to_string()))
        .item("lines", text("{not json"))
        .send()
        .await
        .unwrap();
    let listed = orders.list(OrderFilter { owner: Some(owner), status: None }, &page("10", None)).await.unwrap();
    assert_eq!(listed.items.iter().map(|o| o.id).collect::<Vec<_>>(), [good.id], "the readable rest is answered");
    assert!(matches!(orders.get(broken).await, Err(StoreError::Failed(_))), "a direct read of it fails clearly");
    assert_eq!(orders.get(good.id).await.unwrap().map(|o| o.id), Some(good.id));
}
