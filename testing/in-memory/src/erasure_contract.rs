//! The contract of `AccountErasure`, beside the rest of [`crate::contract`]:
//! run against the in-memory adapters (`tests/contract.rs`) and the DynamoDB
//! ones on DynamoDB Local (`tests/store`). Each expects empty stores.

use domain::ports::{AccountErasure, OrderFilter, OrderStore, StoreError, UserStore};
use domain::{DomainEvent, ErasureError, ErasureRefused, Order, OrderStatus, PageLimit, PageRequest, Role, User};
use time::OffsetDateTime;

use crate::contract::{new_order, new_product, new_user};

fn everything() -> PageRequest {
    PageRequest { limit: PageLimit::parse(Some("100")).expect("valid limit"), after: None }
}

/// A stored order of `owner`, placed and then in `status` (pending,
/// cancelled or, through confirmation, shipped).
async fn order_of(orders: &impl OrderStore, owner: &User, status: OrderStatus) -> Order {
    let product = new_product(250, 10);
    let order = new_order(owner.id, &[&product], 2);
    let event = DomainEvent::order_placed(order.id, owner.id, "erasure", OffsetDateTime::now_utc());
    orders.place(&order, &event, None).await.expect("placed");
    let now = OffsetDateTime::now_utc();
    let mut current = order;
    let path: &[OrderStatus] = match status {
        OrderStatus::Pending => &[],
        OrderStatus::Cancelled => &[OrderStatus::Cancelled],
        OrderStatus::Rejected => &[OrderStatus::Rejected],
        OrderStatus::Confirmed => &[OrderStatus::Confirmed],
        OrderStatus::Shipped => &[OrderStatus::Confirmed, OrderStatus::Shipped],
    };
    for next in path {
        let moved = current.transitioned(*next, None, now).expect("a legal path");
        orders.transition(&current, &moved).await.expect("moved");
        current = moved;
    }
    current
}

async fn stored(users: &impl UserStore, user: &User) -> User {
    users.insert(user, None).await.expect("stored");
    user.clone()
}

/// Erasing removes the account and its email claim (the address registers
/// again as a new account), and every order stays, readable by id and in
/// the listings across owners, with everything but its owner; the owner's
/// own listing is empty. A second erase of the same account is `NotFound`.
pub async fn erasure_frees_the_email_and_keeps_orders_without_owner(
    users: &impl UserStore,
    orders: &impl OrderStore,
    erasures: &impl AccountErasure,
) {
    let customer = stored(users, &new_user("erased")).await;
    let shipped = order_of(orders, &customer, OrderStatus::Shipped).await;
    let cancelled = order_of(orders, &customer, OrderStatus::Cancelled).await;

    erasures.erase(&customer).await.expect("erased");
    while !erasures.finish(customer.id, 1).await.expect("finished a step") {}

    assert_eq!(users.get(customer.id).await.expect("read"), None);
    assert_eq!(users.find_by_email(&customer.email).await.expect("read"), None);
    assert!(matches!(erasures.erase(&customer).await, Err(ErasureError::Store(StoreError::NotFound))));
    for before in [&shipped, &cancelled] {
        let after = orders.get(before.id).await.expect("read").expect("kept for the books");
        assert_eq!(after, before.without_owner(), "only the owner is gone");
    }
    let all = orders.list(OrderFilter { owner: None, status: None }, &everything()).await.expect("listed");
    assert_eq!(all.items.len(), 2, "the listing across owners reads them back");
    assert!(all.items.iter().all(|order| order.owner.is_none()));
    let shipped_listed = orders
        .list(OrderFilter { owner: None, status: Some(OrderStatus::Shipped) }, &everything())
        .await
        .expect("listed");
    assert_eq!(shipped_listed.items.iter().map(|order| order.id).collect::<Vec<_>>(), [shipped.id]);
    let own = orders.list(OrderFilter { owner: Some(customer.id), status: None }, &everything()).await.expect("listed");
    assert!(own.items.is_empty(), "no listing names the erased owner: {:?}", own.items);
    assert_eq!(erasures.unfinished(10).await.expect("read"), [], "nothing is left to sweep");

    let mut again = new_user("again");
    again.email = customer.email.clone();
    users.insert(&again, None).await.expect("the address registers again");
    assert_eq!(users.find_by_email(&customer.email).await.expect("read").map(|user| user.id), Some(again.id));
}

/// The erasing write refuses an admin's account, an account with an open
/// order and an account changed since it was read, writing nothing.
pub async fn erasure_refuses_admins_open_orders_and_stale_versions(
    users: &impl UserStore,
    orders: &impl OrderStore,
    erasures: &impl AccountErasure,
) {
    let mut admin = new_user("admin");
    admin.role = Role::Admin;
    let admin = stored(users, &admin).await;
    assert!(matches!(erasures.erase(&admin).await, Err(ErasureError::Refused(ErasureRefused::Admin))));
    assert!(users.get(admin.id).await.expect("read").is_some());

    let buyer = stored(users, &new_user("buyer")).await;
    let open = order_of(orders, &buyer, OrderStatus::Pending).await;
    assert!(matches!(erasures.erase(&buyer).await, Err(ErasureError::Refused(ErasureRefused::OpenOrders))));
    assert!(users.find_by_email(&buyer.email).await.expect("read").is_some());
    let cancelled = open.transitioned(OrderStatus::Cancelled, None, OffsetDateTime::now_utc()).expect("legal");
    orders.transition(&open, &cancelled).await.expect("cancelled");
    erasures.erase(&buyer).await.expect("no open order left");

    let stale = stored(users, &new_user("stale")).await;
    let mut changed = stale.clone();
    changed.disabled = true;
    changed.version += 1;
    users.update(&changed, None).await.expect("changed");
    assert!(matches!(erasures.erase(&stale).await, Err(ErasureError::Store(StoreError::VersionMismatch))));
    assert!(users.get(stale.id).await.expect("read").is_some());
    assert_eq!(erasures.unfinished(10).await.expect("read"), [buyer.id], "only the erasure that happened");
}

/// Orders are taken off an erased account `limit` at a time; the erasure
/// stays unfinished until none is left, and finishing again (or an
/// account that was never erased) changes nothing.
pub async fn erasure_takes_orders_off_in_steps(
    users: &impl UserStore,
    orders: &impl OrderStore,
    erasures: &impl AccountErasure,
) {
    let customer = stored(users, &new_user("many")).await;
    let bystander = stored(users, &new_user("bystander")).await;
    for _ in 0..5 {
        order_of(orders, &customer, OrderStatus::Cancelled).await;
    }
    let theirs = order_of(orders, &bystander, OrderStatus::Cancelled).await;

    erasures.erase(&customer).await.expect("erased");
    assert_eq!(erasures.unfinished(10).await.expect("read"), [customer.id]);
    let mut steps = 0;
    while !erasures.finish(customer.id, 2).await.expect("a step") {
        steps += 1;
        assert!(steps <= 10, "an erasure in steps of 2 finishes 5 orders");
    }
    assert!(steps >= 3, "5 orders in steps of 2 take at least 3 steps ({steps})");
    assert!(erasures.finish(customer.id, 2).await.expect("again"), "finished stays finished");
    assert!(erasures.finish(bystander.id, 2).await.expect("never erased"), "nothing to do for a live account");
    assert_eq!(erasures.unfinished(10).await.expect("read"), []);
    let all = orders.list(OrderFilter { owner: None, status: None }, &everything()).await.expect("listed");
    assert_eq!(all.items.iter().filter(|order| order.owner.is_none()).count(), 5);
    assert_eq!(orders.get(theirs.id).await.expect("read"), Some(theirs), "another account's order is untouched");
    assert!(users.get(bystander.id).await.expect("read").is_some());
}
