//! After the load: wait for the system to settle, then check the
//! invariants on the run's own data (its users, products, orders, emails).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

use super::actors::statuses;
use super::client::{Client, Req, Sample};
use super::world::{Placed, World};

/// One invariant's verdict, with its numbers.
#[derive(Clone, Debug)]
pub struct Invariant {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

impl Invariant {
    fn new(name: &'static str, passed: bool, detail: impl Into<String>) -> Self {
        Self { name, passed, detail: detail.into() }
    }

    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "passed": self.passed, "detail": self.detail})
    }
}

/// The AWS side of the stack, for what the API does not show: queue
/// depths, dead letters, outbox records, sent emails.
pub struct Cloud {
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub queue_urls: BTreeMap<String, String>,
    pub dead_letter_urls: BTreeMap<String, String>,
    pub moto_endpoint: String,
}

/// One listing walked from its first page to its last.
#[derive(Debug, Default)]
pub struct Walk {
    pub items: Vec<Value>,
    /// `pagination.total` of each page.
    pub totals: Vec<u64>,
    pub error: Option<String>,
}

impl Walk {
    /// Every page's total equals the number of items walked.
    pub fn consistent(&self) -> bool {
        self.error.is_none() && self.totals.iter().all(|total| *total == self.items.len() as u64)
    }

    fn total(&self) -> i64 {
        self.totals.first().copied().unwrap_or_default() as i64
    }

    /// Reported total minus items walked.
    fn gap(&self) -> i64 {
        self.total() - self.items.len() as i64
    }

    fn ids(&self) -> Vec<String> {
        self.items.iter().filter_map(|item| item["id"].as_str().map(str::to_owned)).collect()
    }
}

/// Walks `path` (which has a `?`) page by page.
pub async fn walk(client: &Client, token: &str, route: &'static str, path: &str) -> Walk {
    let mut walk = Walk::default();
    let mut next = path.to_owned();
    for _ in 0..10_000 {
        let answer = client.send(Req::get(route, next.clone()).token(token)).await;
        if answer.status != 200 {
            walk.error = Some(format!("{next}: {}", answer.describe()));
            return walk;
        }
        let page = answer.json();
        walk.items.extend(page["data"].as_array().into_iter().flatten().cloned());
        walk.totals.push(page["pagination"]["total"].as_u64().unwrap_or(u64::MAX));
        match page["pagination"]["next_cursor"].as_str() {
            Some(cursor) => next = format!("{path}&cursor={cursor}"),
            None => return walk,
        }
    }
    walk.error = Some(format!("{path}: more than 10000 pages"));
    walk
}

/// The operator's listings whose totals are compared before and after:
/// every order listing, the catalogue and the users.
pub const ADMIN_LISTINGS: [(&str, &str); 8] = [
    ("GET /orders", "/orders?limit=100"),
    ("GET /orders", "/orders?limit=100&status=pending"),
    ("GET /orders", "/orders?limit=100&status=confirmed"),
    ("GET /orders", "/orders?limit=100&status=rejected"),
    ("GET /orders", "/orders?limit=100&status=shipped"),
    ("GET /orders", "/orders?limit=100&status=cancelled"),
    ("GET /products", "/products?limit=100"),
    ("GET /users", "/users?limit=100"),
];

pub async fn admin_walks(client: &Client, token: &str) -> Vec<Walk> {
    let mut walks = Vec::new();
    for (route, path) in ADMIN_LISTINGS {
        walks.push(walk(client, token, route, path).await);
    }
    walks
}

/// Strings in an event's `data` that name the run's users, orders or addresses?
fn mentions(body: &str, markers: &HashSet<String>) -> bool {
    let Ok(event) = serde_json::from_str::<Value>(body) else { return false };
    let data = if event["data"].is_null() { &event } else { &event["data"] };
    data.as_object().into_iter().flatten().any(|(_, value)| value.as_str().is_some_and(|text| markers.contains(text)))
}

impl Cloud {
    /// The bodies of every outbox record (events not yet published).
    async fn outbox(&self) -> anyhow::Result<Vec<String>> {
        let mut bodies = Vec::new();
        // The outbox is spread over shards: read every one.
        for partition in adapters::dynamo::outbox_partitions() {
            let mut start = None;
            loop {
                let output = self
                    .dynamodb
                    .query()
                    .table_name(&self.table)
                    .index_name("gsi1")
                    .key_condition_expression("gsi1pk = :outbox")
                    .expression_attribute_values(":outbox", AttributeValue::S(partition.clone()))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
                bodies.extend(
                    output.items().iter().filter_map(|item| item.get("body").and_then(|v| v.as_s().ok()).cloned()),
                );
                start = output.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(bodies)
    }

    /// Messages on the consumers' queues: visible, in flight, delayed.
    async fn queued(&self) -> anyhow::Result<u64> {
        let mut total = 0;
        for url in self.queue_urls.values() {
            let depth = local_cloud::dlq::depth(&self.sqs, url).await?;
            total += depth.visible + depth.in_flight + depth.delayed;
        }
        Ok(total)
    }

    /// Every email moto's SES accepted: (to, subject).
    pub async fn emails(&self, http: &reqwest::Client) -> anyhow::Result<Vec<(String, String)>> {
        let data: Value = http
            .get(format!("{}/moto-api/data.json", self.moto_endpoint))
            .timeout(Duration::from_secs(60))
            .send()
            .await?
            .json()
            .await
            .context("moto's data.json")?;
        let mut emails = Vec::new();
        for message in data["ses"]["Message"].as_array().into_iter().flatten() {
            let subject = message["subject"].as_str().unwrap_or_default().to_owned();
            for to in message["destinations"]["ToAddresses"].as_array().into_iter().flatten() {
                emails.push((to.as_str().unwrap_or_default().to_owned(), subject.clone()));
            }
        }
        Ok(emails)
    }
}

/// How the wait for the system to settle went.
#[derive(Debug, Default)]
pub struct Drain {
    pub seconds: f64,
    pub settled: bool,
    pub notes: Vec<String>,
}

/// Waits until none of the run's orders is pending, no outbox record
/// names the run's data and the queues are empty (twice in a row). On a
/// shared stack, other tests' messages may stay on the queues: once the
/// run's own work is done, the queues get `grace` more.
pub async fn drain(
    world: &World,
    checker: &Client,
    admin_token: &str,
    cloud: &Cloud,
    markers: &HashSet<String>,
    timeout: Duration,
    grace: Duration,
) -> Drain {
    let started = Instant::now();
    let mine: HashSet<String> = world.ledger().orders.iter().map(|order| order.id.clone()).collect();
    let mut stable = 0;
    let mut own_work_done_at: Option<Instant> = None;
    let mut last = String::new();
    loop {
        let pending = walk(checker, admin_token, "GET /orders", "/orders?limit=100&status=pending").await;
        let pending_mine = pending.ids().iter().filter(|id| mine.contains(*id)).count();
        let outbox_mine = match cloud.outbox().await {
            Ok(bodies) => bodies.iter().filter(|body| mentions(body, markers)).count(),
            Err(error) => {
                last = format!("outbox unreadable: {error:#}");
                usize::MAX
            }
        };
        let queued = cloud.queued().await.unwrap_or(u64::MAX);
        if pending.error.is_none() && outbox_mine != usize::MAX {
            last = format!(
                "{pending_mine} of the run's orders pending, {outbox_mine} of its events in the outbox, {queued} messages on the queues"
            );
        }
        let own_work_done = pending.error.is_none() && pending_mine == 0 && outbox_mine == 0;
        if own_work_done && queued == 0 {
            stable += 1;
            if stable >= 2 {
                return Drain { seconds: started.elapsed().as_secs_f64(), settled: true, notes: Vec::new() };
            }
        } else {
            stable = 0;
        }
        if own_work_done {
            if own_work_done_at.get_or_insert_with(Instant::now).elapsed() > grace {
                return Drain {
                    seconds: started.elapsed().as_secs_f64(),
                    settled: true,
                    notes: vec![format!(
                        "the run's orders and events were done, but {queued} message(s) stayed on the queues for {grace:?} (on a shared stack: other tests')"
                    )],
                };
            }
        } else {
            own_work_done_at = None;
        }
        if started.elapsed() > timeout {
            return Drain {
                seconds: started.elapsed().as_secs_f64(),
                settled: false,
                notes: vec![format!("not settled after {timeout:?}: {last}")],
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What the checks read at the end.
pub struct Final {
    /// Per customer: (user id, walks of "all" and of each status).
    pub customer_walks: Vec<(String, Vec<(String, Walk)>)>,
    pub admin_before: Vec<Walk>,
    pub admin_after: Vec<Walk>,
    /// Current stock per product (None: unreadable).
    pub stock: Vec<Option<i64>>,
    pub emails: Vec<(String, String)>,
    /// (queue, total dead letters, dead letters naming the run's data)
    pub dead_letters: Vec<(String, usize, usize)>,
    pub outbox_mine: usize,
}

/// Reads everything the invariants need.
pub async fn read_final(
    world: &World,
    checker: &Client,
    admin_token: &str,
    cloud: &Cloud,
    markers: &HashSet<String>,
    admin_before: Vec<Walk>,
) -> anyhow::Result<Final> {
    // Each customer walks its own listings, from its own address.
    let users: Vec<_> = world.ledger().users.iter().filter(|user| !user.admin).cloned().collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, user) in users.into_iter().enumerate() {
        let client = world.client(super::world::customer_address(index));
        // A customer who reset its password signs in with the new one.
        let password = world.password_of(&user.email);
        tasks.spawn(async move {
            let login = client
                .send(
                    Req::post("POST /auth/login", "/auth/login")
                        .json(&json!({"email": user.email, "password": password})),
                )
                .await;
            let token = login.json()["token"].as_str().unwrap_or_default().to_owned();
            let mut walks = vec![("all".to_owned(), walk(&client, &token, "GET /orders", "/orders?limit=7").await)];
            for status in statuses() {
                let path = format!("/orders?limit=7&status={status}");
                walks.push((status.to_owned(), walk(&client, &token, "GET /orders", &path).await));
            }
            (user.id, walks)
        });
    }
    let mut customer_walks = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        customer_walks.push(joined?);
    }
    let admin_after = admin_walks(checker, admin_token).await;
    let mut stock = Vec::new();
    for product in &world.products {
        let answer =
            checker.send(Req::get("GET /products/{id}", format!("/products/{}", product.id)).token(admin_token)).await;
        stock.push(if answer.status == 200 { answer.json()["stock"].as_i64() } else { None });
    }
    let mut dead_letters = Vec::new();
    for (queue, url) in &cloud.dead_letter_urls {
        let letters = local_cloud::dlq::peek(&cloud.sqs, url).await?;
        let mine = letters.iter().filter(|letter| mentions(&letter.body, markers)).count();
        dead_letters.push((queue.clone(), letters.len(), mine));
    }
    let outbox_mine = cloud.outbox().await?.iter().filter(|body| mentions(body, markers)).count();
    let emails = cloud.emails(&world.http).await?;
    Ok(Final { customer_walks, admin_before, admin_after, stock, emails, dead_letters, outbox_mine })
}

/// What emails the run's data should have caused, per (address, subject).
fn expected_emails(world: &World, orders: &HashMap<String, Value>) -> BTreeMap<(String, String), usize> {
    let ledger = world.ledger();
    let mut expected = BTreeMap::new();
    let email_of: HashMap<&str, &str> = ledger.users.iter().map(|u| (u.id.as_str(), u.email.as_str())).collect();
    // Admins are made by the operator (verified, welcomed); customers register
    // (a verification link) and are verified through the operator's door
    // (no welcome).
    for user in &ledger.users {
        let subject = if user.admin { "Welcome to the shop" } else { "Confirm your email address" };
        expected.insert((user.email.clone(), subject.to_owned()), 1);
    }
    for placed in &ledger.orders {
        let Some(to) = email_of.get(placed.owner.as_str()) else { continue };
        let Some(order) = orders.get(&placed.id) else { continue };
        let version = order["version"].as_u64().unwrap_or_default();
        let (confirmed, rejected) = match order["status"].as_str().unwrap_or_default() {
            "confirmed" | "shipped" => (1, 0),
            "rejected" => (0, 1),
            // Cancelled after confirmation (pending 1 -> confirmed 2 -> cancelled 3) was confirmed first.
            "cancelled" if version >= 3 => (1, 0),
            _ => (0, 0),
        };
        expected.insert(((*to).to_owned(), format!("Order {} confirmed", placed.id)), confirmed);
        expected.insert(((*to).to_owned(), format!("Order {} could not be accepted", placed.id)), rejected);
    }
    // A reset link per reset asked for, a notice per reset done.
    expected.extend(super::lifecycle::expected_emails(&ledger.lifecycle));
    expected
}

/// Waits (up to `timeout`) until moto has every email the run should have
/// caused, then reads them once more, a moment later, to catch duplicates.
pub async fn settle_emails(world: &World, cloud: &Cloud, finals: &mut Final, timeout: Duration) -> anyhow::Result<()> {
    let orders = final_orders(finals);
    let expected = expected_emails(world, &orders);
    let wanted: usize = expected.values().sum();
    let addresses: HashSet<&str> = expected.keys().map(|(to, _)| to.as_str()).collect();
    let deadline = Instant::now() + timeout;
    loop {
        let arrived = finals.emails.iter().filter(|(to, _)| addresses.contains(to.as_str())).count();
        if arrived >= wanted || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        finals.emails = cloud.emails(&world.http).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    finals.emails = cloud.emails(&world.http).await?;
    Ok(())
}

/// The run's orders as the customers' "all" listings show them, by id.
fn final_orders(finals: &Final) -> HashMap<String, Value> {
    finals
        .customer_walks
        .iter()
        .flat_map(|(_, walks)| walks.iter().filter(|(name, _)| name == "all"))
        .flat_map(|(_, walk)| walk.items.iter())
        .filter_map(|order| Some((order["id"].as_str()?.to_owned(), order.clone())))
        .collect()
}

/// Every invariant, in the order they are reported.
pub fn invariants(world: &World, finals: &Final, samples: &[Sample], private: bool, drain: &Drain) -> Vec<Invariant> {
    let orders = final_orders(finals);
    let ledger = world.ledger();
    let placed: &[Placed] = &ledger.orders;
    let mut results = Vec::new();

    // Stock conservation per product.
    let mut held = vec![0i64; world.products.len()];
    for order in placed {
        let status = orders.get(&order.id).and_then(|o| o["status"].as_str()).unwrap_or_default();
        if status == "confirmed" || status == "shipped" {
            for (product, quantity) in &order.lines {
                held[*product] += i64::from(*quantity);
            }
        }
    }
    let mut broken = Vec::new();
    let (mut initial, mut restocked, mut current, mut held_total) = (0, 0, 0, 0);
    for (index, product) in world.products.iter().enumerate() {
        let stock = finals.stock[index];
        let (added, uncertain) = (ledger.restocked[index], ledger.uncertain_restock[index]);
        initial += product.initial_stock;
        restocked += added;
        current += stock.unwrap_or_default();
        held_total += held[index];
        if stock != Some(product.initial_stock + added - held[index]) || stock.is_some_and(|s| s < 0) {
            broken.push(format!(
                "{}: {} + {added} restocked != stock {} + {} held{}",
                product.sku,
                product.initial_stock,
                stock.map_or_else(|| "unreadable".to_owned(), |s| s.to_string()),
                held[index],
                if uncertain > 0 {
                    format!(" ({uncertain} units of restocks without an answer)")
                } else {
                    String::new()
                }
            ));
        }
    }
    results.push(Invariant::new(
        "stock conservation per product",
        broken.is_empty(),
        format!(
            "{} products: initial {initial} + restocked {restocked} = {} units; current stock {current} + held by confirmed and shipped orders {held_total} = {}{}",
            world.products.len(),
            initial + restocked,
            current + held_total,
            if broken.is_empty() { String::new() } else { format!("; broken: {}", broken.join("; ")) }
        ),
    ));

    // One order per idempotency key, and retries answered byte for byte.
    let activity = &ledger.activity;
    let keys: HashSet<&str> = placed.iter().map(|o| o.key.as_str()).collect();
    let ids: HashSet<&str> = placed.iter().map(|o| o.id.as_str()).collect();
    let listed: Vec<String> = finals
        .customer_walks
        .iter()
        .flat_map(|(_, walks)| walks.iter().filter(|(name, _)| name == "all"))
        .flat_map(|(_, walk)| walk.ids())
        .collect();
    let listed_set: HashSet<&str> = listed.iter().map(String::as_str).collect();
    let extra = listed_set.difference(&ids).count();
    let misplaced_locations =
        placed.iter().filter(|o| o.location.as_deref() != Some(format!("/api/v1/orders/{}", o.id).as_str())).count();
    let missing = ids.difference(&listed_set).count();
    let idempotent = keys.len() == placed.len()
        && ids.len() == placed.len()
        && listed.len() == listed_set.len()
        && extra == 0
        && missing == 0
        && misplaced_locations == 0
        && activity.retries_identical == activity.retries_same_key
        && activity.concurrent_duplicates_identical == activity.concurrent_duplicates
        && activity.replays_other_body_422 == activity.replays_other_body;
    let mut detail = format!(
        "{} keys answered 201 -> {} distinct orders ({misplaced_locations} with a wrong Location); customers' listings hold {} orders ({extra} not placed by a key, {missing} missing); retries with the same key and body: {}/{} identical (status, body, Location); duplicates in flight: {}/{} identical, one original; other body with a used key: {}/{} answered 422",
        keys.len(),
        ids.len(),
        listed.len(),
        activity.retries_identical,
        activity.retries_same_key,
        activity.concurrent_duplicates_identical,
        activity.concurrent_duplicates,
        activity.replays_other_body_422,
        activity.replays_other_body,
    );
    if !ledger.idempotency_failures.is_empty() {
        detail +=
            &format!("; e.g. {}", ledger.idempotency_failures.iter().take(3).cloned().collect::<Vec<_>>().join("; "));
    }
    results.push(Invariant::new("one order per idempotency key", idempotent, detail));

    // Every order settled.
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for order in placed {
        let status = orders.get(&order.id).and_then(|o| o["status"].as_str()).unwrap_or("unlisted");
        *by_status.entry(status).or_default() += 1;
    }
    let unsettled =
        by_status.get("pending").copied().unwrap_or_default() + by_status.get("unlisted").copied().unwrap_or_default();
    results.push(Invariant::new(
        "every order settled",
        unsettled == 0 && drain.settled,
        format!(
            "{} orders: {}; drained in {:.1} s{}",
            placed.len(),
            by_status.iter().map(|(status, count)| format!("{count} {status}")).collect::<Vec<_>>().join(", "),
            drain.seconds,
            if drain.notes.is_empty() { String::new() } else { format!(" ({})", drain.notes.join("; ")) }
        ),
    ));

    // Every listing total equals its item count.
    let mut walked = 0;
    let mut bad = Vec::new();
    for (user, walks) in &finals.customer_walks {
        let all = walks.iter().find(|(name, _)| name == "all").map(|(_, walk)| walk);
        let by_status: usize = walks.iter().filter(|(name, _)| name != "all").map(|(_, walk)| walk.items.len()).sum();
        for (name, walk) in walks {
            walked += 1;
            if !walk.consistent() {
                bad.push(format!(
                    "customer {user} {name}: total {:?} for {} items{}",
                    walk.totals.first(),
                    walk.items.len(),
                    walk.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
                ));
            }
        }
        if all.is_some_and(|all| all.items.len() != by_status) {
            bad.push(format!(
                "customer {user}: the status listings hold {by_status} orders, all holds {}",
                all.map_or(0, |a| a.items.len())
            ));
        }
    }
    for (index, (route, path)) in ADMIN_LISTINGS.iter().enumerate() {
        let (before, after) = (&finals.admin_before[index], &finals.admin_after[index]);
        walked += 1;
        let gap_kept = before.error.is_none() && after.error.is_none() && before.gap() == after.gap();
        let exact = !private || (after.consistent() && before.consistent());
        if !gap_kept || !exact {
            bad.push(format!(
                "{route} {path}: total - walked was {} before the run and {} after ({} items){}",
                before.gap(),
                after.gap(),
                after.items.len(),
                after.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
            ));
        }
    }
    // The run's orders appear once in the admin listing of their final status.
    for (index, status) in statuses().iter().enumerate() {
        let in_listing: HashMap<&str, usize> = finals.admin_after[index + 1]
            .items
            .iter()
            .filter_map(|o| o["id"].as_str())
            .fold(HashMap::new(), |mut seen, id| {
                *seen.entry(id).or_default() += 1;
                seen
            });
        let misplaced = placed
            .iter()
            .filter(|order| {
                let is = orders.get(&order.id).and_then(|o| o["status"].as_str()) == Some(*status);
                let count = in_listing.get(order.id.as_str()).copied().unwrap_or_default();
                (is && count != 1) || (!is && count != 0)
            })
            .count();
        if misplaced > 0 {
            bad.push(format!(
                "{misplaced} of the run's orders wrongly in or missing from the admin's {status} listing"
            ));
        }
    }
    let scope = if private { "exact" } else { "total - walked unchanged by the run (shared stack)" };
    results.push(Invariant::new(
        "every listing total equals its item count",
        bad.is_empty(),
        format!(
            "{walked} listings walked to the end ({} customers x 6 order listings by owner and status, limit 7; admin: orders all and by status, products, users, limit 100; admin listings {scope}){}",
            finals.customer_walks.len(),
            if bad.is_empty() { String::new() } else { format!("; broken: {}", bad.iter().take(10).cloned().collect::<Vec<_>>().join("; ")) }
        ),
    ));

    // Each email exactly once.
    drop(ledger);
    let expected = expected_emails(world, &orders);
    let addresses: HashSet<&str> = expected.keys().map(|(to, _)| to.as_str()).collect();
    let mut sent: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (to, subject) in &finals.emails {
        if addresses.contains(to.as_str()) {
            *sent.entry((to.clone(), subject.clone())).or_default() += 1;
        }
    }
    let mut wrong = Vec::new();
    for (key, want) in &expected {
        let got = sent.get(key).copied().unwrap_or_default();
        if got != *want {
            wrong.push(format!("{} \"{}\": {got} sent, {want} expected", key.0, key.1));
        }
    }
    for (key, got) in &sent {
        if !expected.contains_key(key) {
            wrong.push(format!("{} \"{}\": {got} sent, none expected", key.0, key.1));
        }
    }
    let welcome = expected
        .iter()
        .filter(|((_, s), n)| (s.starts_with("Welcome") || s.starts_with("Confirm")) && **n == 1)
        .count();
    let confirmations = expected.iter().filter(|((_, s), n)| s.ends_with("confirmed") && **n == 1).count();
    let rejections = expected.iter().filter(|((_, s), n)| s.ends_with("accepted") && **n == 1).count();
    let resets: usize = expected.iter().filter(|((_, s), _)| s.contains("password")).map(|(_, n)| *n).sum();
    results.push(Invariant::new(
        "each email sent exactly once",
        wrong.is_empty(),
        format!(
            "expected {welcome} welcome or verification, {confirmations} confirmation, {rejections} rejection and {resets} password reset emails; {} sent to the run's addresses{}",
            sent.values().sum::<usize>(),
            if wrong.is_empty() { String::new() } else { format!("; wrong: {} ({} in all)", wrong.iter().take(5).cloned().collect::<Vec<_>>().join("; "), wrong.len()) }
        ),
    ));

    // Dead-letter queues.
    let total: usize = finals.dead_letters.iter().map(|(_, total, _)| total).sum();
    let mine: usize = finals.dead_letters.iter().map(|(_, _, mine)| mine).sum();
    results.push(Invariant::new(
        "all dead-letter queues empty",
        mine == 0 && (!private || total == 0),
        format!(
            "{} ({} naming the run's data{})",
            finals
                .dead_letters
                .iter()
                .map(|(queue, total, _)| format!("{queue}: {total}"))
                .collect::<Vec<_>>()
                .join(", "),
            mine,
            if private { "" } else { "; on a shared stack only those count" }
        ),
    ));
    results.push(Invariant::new(
        "outbox empty",
        finals.outbox_mine == 0,
        format!("{} outbox records name the run's data", finals.outbox_mine),
    ));

    // Zero 5xx.
    let server_errors = samples.iter().filter(|s| s.status >= 500).count();
    let unanswered = samples.iter().filter(|s| s.status == 0).count();
    results.push(Invariant::new(
        "zero 5xx responses",
        server_errors == 0 && unanswered == 0,
        format!("{server_errors} 5xx and {unanswered} requests without an answer, of {} requests", samples.len()),
    ));
    let throttled = samples.iter().filter(|s| s.status == 429).count();
    results.push(Invariant::new(
        "every client under the rate limit",
        throttled == 0,
        format!("{throttled} answers 429, each client paced at {} requests a minute", world.per_minute),
    ));
    results
}
