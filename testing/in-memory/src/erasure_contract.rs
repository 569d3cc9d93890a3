//! The contract of `AccountErasure`, beside the rest of [`crate::contract`]:
//! run against the in-memory adapters (`tests/contract.rs`) and the DynamoDB
//! ones on DynamoDB Local (`tests/store`). Each expects empty stores.

use domain::ports::{AccountErasure, OrderFilter, OrderStore, StoreError, UserStore};
use domain::{
    DomainEvent, ErasureError, ErasureRefused, Order, OrderStatus, PageLimit, PageRequest, Role, User, UserId,
};
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

/// `user` stored, its email verified (as an account that orders is).
async fn stored(users: &impl UserStore, user: &User) -> User {
    let user = User { email_verified: true, ..user.clone() };
    users.insert(&user, None).await.expect("stored");
    user
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
    assert!(erasures.erased(customer.id).await.expect("read"), "a finished erasure is remembered");

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
    assert!(!erasures.erased(bystander.id).await.expect("read"), "a live account was not erased");
    assert!(!erasures.erased(UserId::generate()).await.expect("read"), "nor was an id of no account");
    assert!(erasures.erased(customer.id).await.expect("read"), "the erased one was, unfinished or finished");
    assert_eq!(erasures.unfinished(10).await.expect("read"), []);
    let all = orders.list(OrderFilter { owner: None, status: None }, &everything()).await.expect("listed");
    assert_eq!(all.items.iter().filter(|order| order.owner.is_none()).count(), 5);
    assert_eq!(orders.get(theirs.id).await.expect("read"), Some(theirs), "another account's order is untouched");
    assert!(users.get(bystander.id).await.expect("read").is_some());
}

/// A pending order of `owner` for one unit of a fresh product, and its event.
fn placement(owner: UserId) -> (Order, DomainEvent) {
    let order = new_order(owner, &[&new_product(250, 10)], 1);
    let event = DomainEvent::order_placed(order.id, owner, "erasure", OffsetDateTime::now_utc());
    (order, event)
}

/// An order is placed only for an account that is stored and may order
/// (its email verified), checked in the placing write itself: for an
/// erased account, an unverified one or an id that never was an account,
/// the placement is `NotFound` and writes nothing.
pub async fn an_order_is_placed_only_for_a_stored_verified_account(
    users: &impl UserStore,
    orders: &impl OrderStore,
    erasures: &impl AccountErasure,
) {
    let erased = stored(users, &new_user("erased-first")).await;
    erasures.erase(&erased).await.expect("erased");
    let unverified = new_user("unverified");
    users.insert(&unverified, None).await.expect("stored");
    assert!(!unverified.email_verified, "a new account starts unverified");
    for (owner, what) in [(erased.id, "erased"), (unverified.id, "unverified"), (UserId::generate(), "never stored")] {
        let (order, event) = placement(owner);
        let refused = orders.place(&order, &event, None).await;
        assert!(matches!(refused, Err(StoreError::NotFound)), "{what} account: {refused:?}");
        assert_eq!(orders.get(order.id).await.expect("read"), None, "{what} account: nothing was written");
    }
    let all = orders.list(OrderFilter { owner: None, status: None }, &everything()).await.expect("listed");
    assert!(all.items.is_empty(), "no listing shows a refused order: {:?}", all.items);
    let customer = stored(users, &new_user("customer")).await;
    let (order, event) = placement(customer.id);
    orders.place(&order, &event, None).await.expect("a stored, verified account orders");
}

/// A placement and the erasure of its account, started together on their
/// own tasks: never both commit. Either the order is placed and the
/// erasure refused for it (`OpenOrders`), or the account is erased and the
/// placement refused (`NotFound`); a store whose transactions kept
/// conflicting may refuse both as `Unavailable`, never accept both. So no
/// erased account is left with an open order. Run it many times, on
/// several worker threads.
pub async fn a_placement_racing_its_accounts_erasure_never_both_commit<U, O, E>(users: U, orders: O, erasures: E)
where
    U: UserStore + Clone + 'static,
    O: OrderStore + Clone + 'static,
    E: AccountErasure + Clone + 'static,
{
    let customer = stored(&users, &new_user("racing")).await;
    let (order, event) = placement(customer.id);
    let placing = {
        let (orders, order) = (orders.clone(), order.clone());
        tokio::spawn(async move { orders.place(&order, &event, None).await })
    };
    let erasing = {
        let (erasures, customer) = (erasures.clone(), customer.clone());
        tokio::spawn(async move { erasures.erase(&customer).await })
    };
    let (placed, erased) = (placing.await.expect("no panic"), erasing.await.expect("no panic"));
    let outcome = format!("placement {placed:?}, erasure {erased:?}");
    match (&placed, &erased) {
        (Ok(()), Ok(())) => panic!("both committed: {outcome}"),
        (Ok(()), Err(refused)) => assert!(
            matches!(
                refused,
                ErasureError::Refused(ErasureRefused::OpenOrders) | ErasureError::Store(StoreError::Unavailable(_))
            ),
            "{outcome}"
        ),
        (Err(refused), Ok(())) => {
            assert!(matches!(refused, StoreError::NotFound | StoreError::Unavailable(_)), "{outcome}");
        }
        (Err(placing), Err(erasing)) => assert!(
            matches!(placing, StoreError::Unavailable(_))
                || matches!(erasing, ErasureError::Store(StoreError::Unavailable(_))),
            "a refusal needs the other's commit: {outcome}"
        ),
    }
    let account_left = users.get(customer.id).await.expect("read").is_some();
    let order_stored = orders.get(order.id).await.expect("read").is_some();
    assert_eq!(account_left, erased.is_err(), "{outcome}");
    assert_eq!(order_stored, placed.is_ok(), "{outcome}");
    assert!(account_left || !order_stored, "an erased account holds an open order: {outcome}");
}
