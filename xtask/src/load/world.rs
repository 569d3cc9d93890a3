//! What a load run knows about the data it made: its users, products and
//! orders, the stock it added, and what each kind of request answered. The
//! invariants are checked against this, never against global totals, so a
//! run can share a stack with other tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::client::{Client, Recorder};

pub const PASSWORD: &str = "load test password 1";

/// One of the run's products.
#[derive(Clone, Debug)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub initial_stock: i64,
    /// Never restocked, so that some orders are rejected for want of stock.
    pub scarce: bool,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub email: String,
    pub admin: bool,
}

/// An order as its first answer (201) described it.
#[derive(Clone, Debug)]
pub struct Placed {
    pub key: String,
    pub owner: String,
    pub id: String,
    /// (product index, quantity)
    pub lines: Vec<(usize, u32)>,
    /// The Location header of the first answer.
    pub location: Option<String>,
}

/// Counts of what the simulated clients did and were answered.
#[derive(Clone, Debug, Default)]
pub struct Activity {
    pub registrations: u64,
    pub logins: u64,
    pub catalogue_pages: u64,
    pub orders_placed: u64,
    /// Same key, same body, sent after the first answer.
    pub retries_same_key: u64,
    pub retries_identical: u64,
    /// Same key, same body, sent while the first was in flight.
    pub concurrent_duplicates: u64,
    pub concurrent_duplicates_identical: u64,
    /// Same key, another body: must be 422.
    pub replays_other_body: u64,
    pub replays_other_body_422: u64,
    /// Keys whose placement never got a definite answer.
    pub placements_without_answer: u64,
    /// Placements refused at the per-account caps (409 open_order_limit, product_hold_limit).
    pub placements_capped: u64,
    pub cancels_ok: u64,
    pub cancels_refused_409: u64,
    pub cancels_refused_412: u64,
    pub ships_ok: u64,
    pub ships_412_reread: u64,
    pub ships_refused_409: u64,
    pub restocks: u64,
    pub restock_units: i64,
    pub restock_412_reread: u64,
    /// Edits with `If-Match: *` that keep the stock read (racing orders).
    pub unpinned_edits: u64,
    /// Of those, refused because an order moved the stock meanwhile.
    pub unpinned_edits_refused_409: u64,
}

/// A customer who ran to the end of the load, kept for the flash sale: the
/// same client (address and pace) and a token that was valid at the end.
pub struct Shopper {
    pub id: String,
    pub email: String,
    pub token: String,
    pub client: Client,
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub users: Vec<User>,
    pub orders: Vec<Placed>,
    /// Units added per product by successful restocks (PUT with If-Match).
    pub restocked: Vec<i64>,
    /// Units of restocks whose outcome is unknown (no answer, 5xx).
    pub uncertain_restock: Vec<i64>,
    pub activity: Activity,
    /// Answers no client expected: "<route> <status> <code>" -> count.
    pub surprises: BTreeMap<String, u64>,
    /// Idempotency failures, described (a few are kept).
    pub idempotency_failures: Vec<String>,
    /// What the lifecycle customers did and were answered.
    pub lifecycle: super::lifecycle::Tally,
    /// Passwords changed by a reset, by address (the others are [`PASSWORD`]).
    pub passwords: std::collections::HashMap<String, String>,
}

/// Shared by every simulated client of one run.
pub struct World {
    /// Names this run's data (`load.<run>.c1@example.com`, `LD-<RUN>-1`).
    pub run: String,
    pub seed: u64,
    pub api_url: String,
    pub http: reqwest::Client,
    pub recorder: Arc<Recorder>,
    pub per_minute: u32,
    pub products: Vec<Product>,
    pub deadline: Instant,
    /// The accounts, reached directly: the operator's door that verifies a
    /// registered customer's address (the load does not read each link back
    /// from moto, which serves one request at a time).
    pub users: adapters::dynamo::DynamoUserStore,
    /// The first this many customers live the account lifecycle ([`super::lifecycle`]).
    pub lifecycle_customers: usize,
    /// How long the stack's refresh tokens live unused, and its reset links.
    pub refresh_ttl: std::time::Duration,
    pub reset_ttl: std::time::Duration,
    /// moto, whose SES recorded the emails (the reset links).
    pub moto_endpoint: String,
    ledger: Mutex<Ledger>,
    shoppers: Mutex<Vec<Shopper>>,
}

impl World {
    pub fn new(
        run: String,
        seed: u64,
        api_url: String,
        per_minute: u32,
        users: adapters::dynamo::DynamoUserStore,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
        Ok(Self {
            run,
            seed,
            api_url,
            http,
            recorder: Arc::new(Recorder::default()),
            per_minute,
            products: Vec::new(),
            deadline: Instant::now(),
            users,
            lifecycle_customers: 0,
            refresh_ttl: std::time::Duration::from_secs(14 * 24 * 3600),
            reset_ttl: std::time::Duration::from_secs(30 * 60),
            moto_endpoint: String::new(),
            ledger: Mutex::new(Ledger::default()),
            shoppers: Mutex::new(Vec::new()),
        })
    }

    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a customer who ran to the end, for the flash sale.
    pub fn keep_shopper(&self, shopper: Shopper) {
        self.shoppers.lock().unwrap_or_else(PoisonError::into_inner).push(shopper);
    }

    /// The customers who ran to the end, taken out of the world.
    pub fn take_shoppers(&self) -> Vec<Shopper> {
        std::mem::take(&mut *self.shoppers.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A customer's or admin's own paced client.
    pub fn client(&self, address: String) -> Client {
        Client::paced(self.http.clone(), &self.api_url, address, self.per_minute, self.recorder.clone())
    }

    /// The operator's checking client (rotating addresses, unpaced).
    pub fn checker(&self, range: u8) -> Client {
        Client::rotating(self.http.clone(), &self.api_url, [19, range], 40, self.recorder.clone())
    }

    pub fn surprise(&self, route: &str, answer: &super::client::Answer) {
        *self.ledger().surprises.entry(format!("{route}: {}", answer.describe())).or_insert(0) += 1;
    }

    /// The password `email` signs in with now.
    pub fn password_of(&self, email: &str) -> String {
        self.ledger().passwords.get(email).cloned().unwrap_or_else(|| PASSWORD.to_owned())
    }

    pub fn customer_email(&self, index: usize) -> String {
        format!("load.{}.c{index}@example.com", self.run)
    }

    pub fn admin_email(&self, index: usize) -> String {
        format!("load.{}.admin{index}@example.com", self.run)
    }
}

/// Customer `index`'s address, in 198.18.0.0/15 (the benchmarking range)
/// but away from the addresses the contract fuzzing uses (198.18.*, 198.19.25x.*).
pub fn customer_address(index: usize) -> String {
    format!("198.19.{}.{}", 16 + (index / 250) % 200, index % 250 + 1)
}

pub fn admin_address(index: usize) -> String {
    format!("198.19.8.{}", index % 250 + 1)
}
