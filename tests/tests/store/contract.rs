//! The contract suite (in-memory/src/contract.rs) against the DynamoDB
//! adapters on DynamoDB Local: the same promises the in-memory adapters keep.

use std::time::Duration;

use adapters::dynamo::{
    DynamoIdempotencyStore, DynamoMessageClaims, DynamoOrderStore, DynamoProductStore, DynamoUserStore,
};
use adapters::throttle::{DynamoSignInHistory, FixedWindow};
use in_memory::contract;

use crate::fresh_table;

#[tokio::test]
async fn users() {
    contract::users_are_unique_by_email(&DynamoUserStore::new(fresh_table().await)).await;
    contract::user_updates_are_conditional_on_the_version(&DynamoUserStore::new(fresh_table().await)).await;
    contract::taking_an_admin_away_needs_another_active_admin(&DynamoUserStore::new(fresh_table().await)).await;
    contract::users_list_newest_first_in_pages(&DynamoUserStore::new(fresh_table().await)).await;
}

#[tokio::test]
async fn products() {
    contract::skus_are_unique_and_move_with_a_replace(&DynamoProductStore::new(fresh_table().await)).await;
    contract::product_changes_are_conditional_on_the_version(&DynamoProductStore::new(fresh_table().await)).await;
    contract::product_listings_split_active_and_inactive(&DynamoProductStore::new(fresh_table().await)).await;
}

#[tokio::test]
async fn orders() {
    let table = fresh_table().await;
    contract::an_idempotency_key_is_claimed_once(
        &DynamoUserStore::new(table.clone()),
        &DynamoOrderStore::new(table.clone()),
        &DynamoIdempotencyStore::new(table),
    )
    .await;
    let table = fresh_table().await;
    contract::creates_claim_their_idempotency_key_with_the_write(
        &DynamoUserStore::new(table.clone()),
        &DynamoProductStore::new(table.clone()),
        &DynamoIdempotencyStore::new(table),
    )
    .await;
    let table = fresh_table().await;
    contract::reservation_is_all_or_nothing(
        &DynamoUserStore::new(table.clone()),
        &DynamoProductStore::new(table.clone()),
        &DynamoOrderStore::new(table),
    )
    .await;
    let table = fresh_table().await;
    contract::cancelling_a_confirmed_order_gives_its_stock_back(
        &DynamoUserStore::new(table.clone()),
        &DynamoProductStore::new(table.clone()),
        &DynamoOrderStore::new(table),
    )
    .await;
    let table = fresh_table().await;
    contract::order_listings_filter_by_owner_and_status(
        &DynamoUserStore::new(table.clone()),
        &DynamoOrderStore::new(table),
    )
    .await;
}

#[tokio::test]
async fn hold_limits() {
    let table = fresh_table().await;
    contract::open_orders_are_listed_by_age_for_the_expiry(
        &DynamoUserStore::new(table.clone()),
        &DynamoProductStore::new(table.clone()),
        &DynamoOrderStore::new(table),
    )
    .await;
    let table = fresh_table().await;
    contract::open_orders_stay_within_the_caps(
        &DynamoUserStore::new(table.clone()),
        &DynamoProductStore::new(table.clone()),
        &DynamoOrderStore::new(table).with_limits(contract::hold_limits_contract()),
    )
    .await;
}

#[tokio::test]
async fn message_claims() {
    // Claims expire in whole seconds: a 1 s claim has expired 2 s later.
    let claims = DynamoMessageClaims::new(fresh_table().await, Duration::from_secs(1));
    contract::message_claims_hold_until_they_expire(&claims, async || {
        tokio::time::sleep(Duration::from_millis(2100)).await;
    })
    .await;
}

#[tokio::test]
async fn throttles() {
    let throttle = FixedWindow::new(fresh_table().await, "CONTRACT", 3, Duration::from_secs(3600));
    contract::throttles_count_every_attempt(&throttle).await;
}

#[tokio::test]
async fn sign_in_histories() {
    // Entries expire in whole seconds: one kept for 1 s has lapsed 2 s later.
    let history = DynamoSignInHistory::new(fresh_table().await, "CONTRACT", Duration::from_secs(1));
    contract::sign_in_histories_forget_after_their_time_to_live(&history, async || {
        tokio::time::sleep(Duration::from_millis(2100)).await;
    })
    .await;
}

#[tokio::test]
async fn verifications() {
    let table = fresh_table().await;
    let verifications = adapters::dynamo::DynamoVerifications::new(table.clone());
    contract::verification_links_work_once_and_only_until_they_expire(&DynamoUserStore::new(table), &verifications)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_verifications() {
    let table = fresh_table().await;
    let verifications = adapters::dynamo::DynamoVerifications::new(table.clone());
    contract::concurrent_verifications_with_one_link_verify_once(&DynamoUserStore::new(table), &verifications).await;
}

#[tokio::test]
async fn erasures() {
    use adapters::dynamo::DynamoAccountErasure;
    use in_memory::erasure_contract;
    let stores = |table: adapters::dynamo::Table| {
        (DynamoUserStore::new(table.clone()), DynamoOrderStore::new(table.clone()), DynamoAccountErasure::new(table))
    };
    let (users, orders, erasures) = stores(fresh_table().await);
    erasure_contract::erasure_frees_the_email_and_keeps_orders_without_owner(&users, &orders, &erasures).await;
    let (users, orders, erasures) = stores(fresh_table().await);
    erasure_contract::erasure_refuses_admins_open_orders_and_stale_versions(&users, &orders, &erasures).await;
    let (users, orders, erasures) = stores(fresh_table().await);
    erasure_contract::erasure_takes_orders_off_in_steps(&users, &orders, &erasures).await;
    let (users, orders, erasures) = stores(fresh_table().await);
    erasure_contract::an_order_is_placed_only_for_a_stored_verified_account(&users, &orders, &erasures).await;
}

/// On four worker threads, against DynamoDB Local: the placing transaction's
/// check of the account and the erasing transaction's check of the
/// holdings let at most one of the two commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_placements_and_erasures() {
    use adapters::dynamo::DynamoAccountErasure;
    let table = fresh_table().await;
    for _ in 0..20 {
        in_memory::erasure_contract::a_placement_racing_its_accounts_erasure_never_both_commit(
            DynamoUserStore::new(table.clone()),
            DynamoOrderStore::new(table.clone()),
            DynamoAccountErasure::new(table.clone()),
        )
        .await;
    }
}

#[tokio::test]
async fn sessions() {
    let table = fresh_table().await;
    let sessions = adapters::dynamo::DynamoSessionStore::new(table);
    contract::sessions_rotate_once_and_a_reused_token_revokes_the_family(&sessions).await;
    contract::expired_sessions_do_not_rotate(&sessions).await;
    contract::sessions_end_one_or_all(&sessions).await;
}

/// On four worker threads, against DynamoDB Local: its conditional update
/// lets exactly one of the racing refreshes rotate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes() {
    let sessions = adapters::dynamo::DynamoSessionStore::new(fresh_table().await);
    for _ in 0..5 {
        contract::concurrent_refreshes_with_one_token_rotate_once(sessions.clone()).await;
    }
}

#[tokio::test]
async fn second_factors() {
    let factors = adapters::dynamo::DynamoSecondFactorStore::new(fresh_table().await);
    contract::totp_enrolment_is_pending_until_confirmed(&factors).await;
}

/// On four worker threads, against DynamoDB Local: its conditional updates
/// let exactly one of the racing uses of a code (or recovery code) win.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_second_factor_uses() {
    let factors = adapters::dynamo::DynamoSecondFactorStore::new(fresh_table().await);
    for _ in 0..3 {
        contract::a_totp_step_is_used_once(factors.clone()).await;
        contract::a_recovery_code_is_used_once(factors.clone()).await;
    }
}

#[tokio::test]
async fn password_resets() {
    let table = fresh_table().await;
    contract::password_resets_work_once_until_replaced_or_expired(
        &DynamoUserStore::new(table.clone()),
        &adapters::dynamo::DynamoPasswordResets::new(table),
    )
    .await;
}

/// On four worker threads, against DynamoDB Local: the conditional delete in
/// the transaction lets exactly one confirmation set a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_password_resets() {
    let table = fresh_table().await;
    for _ in 0..3 {
        contract::concurrent_confirmations_complete_once(
            DynamoUserStore::new(table.clone()),
            adapters::dynamo::DynamoPasswordResets::new(table.clone()),
        )
        .await;
    }
}
