//! The contract suite against the in-memory adapters. The same suite runs
//! against the DynamoDB adapters in `tests/store`.

use std::time::Duration;

use in_memory::{Memory, contract};

const CLAIM_DURATION: Duration = Duration::from_secs(15);

#[tokio::test]
async fn users() {
    contract::users_are_unique_by_email(&Memory::new().users()).await;
    contract::user_updates_are_conditional_on_the_version(&Memory::new().users()).await;
    contract::taking_an_admin_away_needs_another_active_admin(&Memory::new().users()).await;
    contract::users_list_newest_first_in_pages(&Memory::new().users()).await;
}

#[tokio::test]
async fn products() {
    contract::skus_are_unique_and_move_with_a_replace(&Memory::new().products()).await;
    contract::product_changes_are_conditional_on_the_version(&Memory::new().products()).await;
    contract::product_listings_split_active_and_inactive(&Memory::new().products()).await;
}

#[tokio::test]
async fn orders() {
    let memory = Memory::new();
    contract::an_idempotency_key_is_claimed_once(&memory.users(), &memory.orders(), &memory.idempotency()).await;
    let memory = Memory::new();
    contract::creates_claim_their_idempotency_key_with_the_write(
        &memory.users(),
        &memory.products(),
        &memory.idempotency(),
    )
    .await;
    let memory = Memory::new();
    contract::reservation_is_all_or_nothing(&memory.users(), &memory.products(), &memory.orders()).await;
    let memory = Memory::new();
    contract::cancelling_a_confirmed_order_gives_its_stock_back(&memory.users(), &memory.products(), &memory.orders())
        .await;
    let memory = Memory::new();
    contract::order_listings_filter_by_owner_and_status(&memory.users(), &memory.orders()).await;
    let memory = Memory::new();
    contract::open_orders_are_listed_by_age_for_the_expiry(&memory.users(), &memory.products(), &memory.orders()).await;
    let memory = Memory::new();
    contract::open_orders_stay_within_the_caps(
        &memory.users(),
        &memory.products(),
        &memory.orders_with_limits(contract::hold_limits_contract()),
    )
    .await;
}

#[tokio::test]
async fn message_claims() {
    let memory = Memory::new();
    contract::message_claims_hold_until_they_expire(&memory.message_claims(CLAIM_DURATION), async || {
        memory.advance(CLAIM_DURATION + Duration::from_secs(1));
    })
    .await;
}

#[tokio::test]
async fn throttles() {
    contract::throttles_count_every_attempt(&Memory::new().throttle("CONTRACT", 3, Duration::from_secs(60))).await;
}

#[tokio::test]
async fn sign_in_histories() {
    let memory = Memory::new();
    let ttl = Duration::from_secs(1);
    contract::sign_in_histories_forget_after_their_time_to_live(&memory.sign_in_history("CONTRACT", ttl), async || {
        memory.advance(ttl);
    })
    .await;
}

#[tokio::test]
async fn sessions() {
    contract::sessions_rotate_once_and_a_reused_token_revokes_the_family(&Memory::new().sessions()).await;
    contract::expired_sessions_do_not_rotate(&Memory::new().sessions()).await;
    contract::sessions_end_one_or_all(&Memory::new().sessions()).await;
}

/// On four worker threads: the refreshes run in parallel, not just interleaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes() {
    for _ in 0..20 {
        contract::concurrent_refreshes_with_one_token_rotate_once(Memory::new().sessions()).await;
    }
}

#[tokio::test]
async fn second_factors() {
    contract::totp_enrolment_is_pending_until_confirmed(&Memory::new().second_factors()).await;
}

/// On four worker threads: the sign-ins with one code run in parallel, not just interleaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_second_factor_uses() {
    for _ in 0..20 {
        contract::a_totp_step_is_used_once(Memory::new().second_factors()).await;
        contract::a_recovery_code_is_used_once(Memory::new().second_factors()).await;
    }
}

#[tokio::test]
async fn verifications() {
    let memory = Memory::new();
    contract::verification_links_work_once_and_only_until_they_expire(&memory.users(), &memory.verifications()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_verifications() {
    let memory = Memory::new();
    contract::concurrent_verifications_with_one_link_verify_once(&memory.users(), &memory.verifications()).await;
}

#[tokio::test]
async fn erasures() {
    let memory = Memory::new();
    in_memory::erasure_contract::erasure_frees_the_email_and_keeps_orders_without_owner(
        &memory.users(),
        &memory.orders(),
        &memory.erasures(),
    )
    .await;
    let memory = Memory::new();
    in_memory::erasure_contract::erasure_refuses_admins_open_orders_and_stale_versions(
        &memory.users(),
        &memory.orders(),
        &memory.erasures(),
    )
    .await;
    let memory = Memory::new();
    in_memory::erasure_contract::erasure_takes_orders_off_in_steps(
        &memory.users(),
        &memory.orders(),
        &memory.erasures(),
    )
    .await;
    let memory = Memory::new();
    in_memory::erasure_contract::an_order_is_placed_only_for_a_stored_verified_account(
        &memory.users(),
        &memory.orders(),
        &memory.erasures(),
    )
    .await;
}

/// On four worker threads: the placement and the erasure run in parallel, not just interleaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_placements_and_erasures() {
    let memory = Memory::new();
    for _ in 0..200 {
        in_memory::erasure_contract::a_placement_racing_its_accounts_erasure_never_both_commit(
            memory.users(),
            memory.orders(),
            memory.erasures(),
        )
        .await;
    }
}

#[tokio::test]
async fn password_resets() {
    let memory = Memory::new();
    contract::password_resets_work_once_until_replaced_or_expired(&memory.users(), &memory.password_resets()).await;
}

/// On four worker threads: the confirmations run in parallel, not just interleaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_password_resets() {
    for _ in 0..20 {
        let memory = Memory::new();
        contract::concurrent_confirmations_complete_once(memory.users(), memory.password_resets()).await;
    }
}
