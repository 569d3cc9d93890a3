//! The flash sale: after the load's checks, every customer who ran to the
//! end orders one new product, whose stock is far below what they ask for,
//! as fast as their pace allows, for a few seconds. Each placement carries
//! an `Idempotency-Key`, and some are sent twice at once or retried.
//!
//! What must hold: every answer is a clean 201, 409 (the hold caps; a key
//! still in flight) or 503 with `Retry-After`, never a 500 and never no
//! answer; no oversell (the stock never goes below zero, and the units the
//! confirmed orders hold are exactly the stock that left); every order is
//! decided; one order per key (the customers' own listings hold exactly the
//! orders the keys created). It also measures how fast one product's
//! orders are decided on the local stack, the figure the per-product bound
//! in docs/architecture.md is set beside.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::checks::{Invariant, Walk, walk};
use super::client::{Answer, Client, Phase, Req, Sample};
use super::report::{self, RouteStats};
use super::world::{Shopper, World};

/// Answers a flash sale may give to `POST /orders`.
const CLEAN: [&str; 5] =
    ["201", "409 open_order_limit", "409 product_hold_limit", "409 idempotency_key_in_use", "503 with Retry-After"];

/// What the flash sale did and found.
#[derive(Debug)]
pub struct Flash {
    pub seconds: f64,
    pub customers: usize,
    pub per_minute: u32,
    pub stock: i64,
    /// Every answer to `POST /orders`, by kind ("201", "409 <code>", "503 with Retry-After", ...).
    pub answers: BTreeMap<String, u64>,
    /// Keys answered 201 (each an order).
    pub orders: usize,
    pub units_asked: i64,
    pub confirmed: usize,
    pub confirmed_units: i64,
    pub rejected: usize,
    pub undecided: usize,
    pub stock_left: Option<i64>,
    /// From the sale's end until every order was decided.
    pub settle_seconds: f64,
    /// Orders decided per second, first decision to last (their `updated_at`).
    pub decided_per_second: Option<f64>,
    pub route: Option<RouteStats>,
    pub invariants: Vec<Invariant>,
}

impl Flash {
    pub fn to_json(&self) -> Value {
        json!({
            "seconds": self.seconds, "customers": self.customers, "per_minute": self.per_minute,
            "stock": self.stock, "answers": self.answers, "orders": self.orders,
            "units_asked": self.units_asked, "confirmed": self.confirmed,
            "confirmed_units": self.confirmed_units, "rejected": self.rejected,
            "undecided": self.undecided, "stock_left": self.stock_left,
            "settle_seconds": self.settle_seconds, "decided_per_second": self.decided_per_second,
            "post_orders": self.route.as_ref().map(|r| json!({
                "requests": r.count, "p50_ms": r.p50_ms, "p95_ms": r.p95_ms, "p99_ms": r.p99_ms, "max_ms": r.max_ms,
            })),
            "invariants": self.invariants.iter().map(Invariant::to_json).collect::<Vec<_>>(),
        })
    }

    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "Flash sale: {:.1} s, {} customers (each at most {} requests a minute) ordering one product of {} units, 1 or 2 units an order, each with an `Idempotency-Key` (one in ten sent twice at once, one in five retried after its answer).\n\n",
            self.seconds, self.customers, self.per_minute, self.stock
        );
        md += "| answers to `POST /orders` | count |\n|---|---:|\n";
        for (kind, count) in &self.answers {
            let clean = if CLEAN.contains(&kind.as_str()) { "" } else { " (**not clean**)" };
            md += &format!("| {kind}{clean} | {count} |\n");
        }
        let per_second = |n: f64| n / self.seconds.max(0.001);
        let answers: u64 = self.answers.values().sum();
        md += "\n| answers/s | orders placed (201) | orders/s | units asked | confirmed (units) | rejected | stock left | decided/s (one product) | settled after the sale |\n";
        md += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        md += &format!(
            "| {:.1} | {} | {:.1} | {} | {} ({}) | {} | {} | {} | {:.1} s |\n",
            per_second(answers as f64),
            self.orders,
            per_second(self.orders as f64),
            self.units_asked,
            self.confirmed,
            self.confirmed_units,
            self.rejected,
            self.stock_left.map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
            self.decided_per_second.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}")),
            self.settle_seconds,
        );
        if let Some(r) = &self.route {
            md += &format!(
                "\n`POST /orders` during the sale: {} requests, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms.\n",
                r.count, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms
            );
        }
        md += "\nLocally one instance of each function and DynamoDB Local, which runs transactions one at a time, decide one product's orders; in DynamoDB one item's limit bounds it (docs/architecture.md, the per-product bound).\n";
        md
    }
}

/// One placement the sale made (a key answered 201).
struct Order {
    key: String,
    owner: String,
    id: String,
    units: i64,
}

#[derive(Default)]
struct Tally {
    answers: BTreeMap<String, u64>,
    orders: Vec<Order>,
    /// Idempotency failures, described (a few are kept).
    failures: Vec<String>,
    duplicates_in_flight: u64,
    retries: u64,
}

impl Tally {
    fn fail(&mut self, what: String) {
        if self.failures.len() < 10 {
            self.failures.push(what);
        } else {
            self.failures.push(String::new());
        }
    }
}

/// The kind of an answer, as the sale counts it.
fn kind(answer: &Answer) -> String {
    match answer.status {
        0 => "no answer".to_owned(),
        201 => "201".to_owned(),
        503 if answer.header("retry-after").is_some() => "503 with Retry-After".to_owned(),
        503 => "503 without Retry-After".to_owned(),
        _ => answer.describe(),
    }
}

/// Runs the sale with the world's customers, then reads what it left and
/// checks it. `checker` is the operator's (unpaced) client.
pub async fn run(
    world: &Arc<World>,
    checker: &Client,
    admin_token: &str,
    seconds: u64,
    stock: i64,
    timeout: Duration,
) -> anyhow::Result<Flash> {
    let shoppers = world.take_shoppers();
    if shoppers.is_empty() {
        bail!("no customer ran to the end of the load to take part in the flash sale");
    }
    let sku = format!("LF-{}", world.run.to_uppercase());
    let body = json!({
        "sku": sku, "name": "Flash sale product", "description": "made by cargo xtask load's flash sale",
        "price": {"amount_minor": 999, "currency": "EUR"}, "stock": stock,
    });
    let answer = checker.send(Req::post("POST /products", "/products").token(admin_token).json(&body)).await;
    if answer.status != 201 {
        bail!("creating the flash-sale product answered {}", answer.describe());
    }
    let product = answer.json()["id"].as_str().context("product without id")?.to_owned();

    let customers = shoppers.len();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    world.recorder.set_phase(Phase::Flash);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, shopper) in shoppers.into_iter().enumerate() {
        let (world, tally, product) = (world.clone(), tally.clone(), product.clone());
        tasks.spawn(async move { shop(&world, shopper, index, &product, deadline, &tally).await });
    }
    let mut shoppers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        shoppers.push(joined.context("a flash-sale customer panicked")?);
    }
    let sale_seconds = started.elapsed().as_secs_f64();
    world.recorder.set_phase(Phase::Check);

    // Every order decided, then each customer's own listing, whole.
    let settle_started = Instant::now();
    let settle_deadline = settle_started + timeout;
    let orders_of =
        |walk: &Walk| -> Vec<Value> { walk.items.iter().filter(|order| holds(order, &product)).cloned().collect() };
    let walks = loop {
        let mut walks = Vec::new();
        for shopper in &shoppers {
            walks.push(walk(checker, &shopper.token, "GET /orders", "/orders?limit=100").await);
        }
        let pending = walks.iter().flat_map(orders_of).filter(|order| order["status"] == "pending").count();
        if pending == 0 || Instant::now() > settle_deadline {
            break walks;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let settle_seconds = settle_started.elapsed().as_secs_f64();
    let stock_left = checker
        .send(Req::get("GET /products/{id}", format!("/products/{product}")))
        .await
        .json()
        .get("stock")
        .and_then(Value::as_i64);

    let samples: Vec<Sample> = world
        .recorder
        .samples()
        .into_iter()
        .filter(|s| s.phase == Phase::Flash)
        .map(|s| Sample { phase: Phase::Load, ..s })
        .collect();
    let route = report::route_stats(&samples).into_iter().find(|r| r.route == "POST /orders");
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(PoisonError::into_inner));
    let mut flash =
        judge(JudgeInput { tally, walks: &walks, product: &product, stock, stock_left, sale_seconds, settle_seconds });
    flash.customers = customers;
    flash.per_minute = world.per_minute;
    flash.route = route;
    Ok(flash)
}

/// Whether `order` (an order listing's item) holds `product`.
fn holds(order: &Value, product: &str) -> bool {
    order["lines"].as_array().into_iter().flatten().any(|line| line["product_id"] == product)
}

/// One customer's sale: order until the deadline, each placement to a
/// definite answer. Hands the shopper back.
async fn shop(
    world: &World,
    mut shopper: Shopper,
    index: usize,
    product: &str,
    deadline: Instant,
    tally: &Mutex<Tally>,
) -> Shopper {
    let mut rng = StdRng::seed_from_u64(world.seed ^ 0xf1a5 ^ (index as u64) << 20);
    let lock = || tally.lock().unwrap_or_else(PoisonError::into_inner);
    while Instant::now() < deadline {
        let units = rng.random_range(1..=2);
        let body = json!({"lines": [{"product_id": product, "quantity": units}]}).to_string();
        let key = format!("flash-{}", ulid::Ulid::new());
        let answer = if rng.random_bool(0.1) {
            let (a, b) =
                tokio::join!(place(&shopper, &key, &body, true, tally), place(&shopper, &key, &body, false, tally));
            let originals = [&a, &b].iter().filter(|x| x.header("idempotent-replayed").is_none()).count();
            let same = a.status == b.status && a.body == b.body;
            let both_refused = a.status == 409 && b.status == 409 && a.error_code() == b.error_code();
            let mut counts = lock();
            counts.duplicates_in_flight += 1;
            if !((same && a.status == 201 && originals == 1) || both_refused) {
                counts.fail(format!("key {key}: two in flight answered {} and {}", a.describe(), b.describe()));
            }
            a
        } else {
            place(&shopper, &key, &body, true, tally).await
        };
        if answer.status == 401 {
            if let Ok(token) = relogin(world, &shopper).await {
                shopper.token = token;
            }
            continue;
        }
        if answer.status != 201 {
            continue;
        }
        let id = answer.json()["id"].as_str().unwrap_or_default().to_owned();
        lock().orders.push(Order { key: key.clone(), owner: shopper.id.clone(), id: id.clone(), units });
        if rng.random_bool(0.2) {
            let again = place(&shopper, &key, &body, true, tally).await;
            let mut counts = lock();
            counts.retries += 1;
            if again.status != 201 || again.body != answer.body || again.header("idempotent-replayed") != Some("true") {
                counts.fail(format!("key {key}: the retry answered {} after 201 {id}", again.describe()));
            }
        }
    }
    shopper
}

/// Sends one placement until it has a definite answer, counting every
/// answer: a 503 waits its `Retry-After` (at most 2 s) and no answer or a
/// key still in flight 200 ms, then the same key and bytes go again.
async fn place(shopper: &Shopper, key: &str, body: &str, paced: bool, tally: &Mutex<Tally>) -> Answer {
    let mut attempt = 0;
    loop {
        let mut req =
            Req::post("POST /orders", "/orders").token(&shopper.token).header("idempotency-key", key).body(body);
        if !paced {
            req = req.unpaced();
        }
        let answer = shopper.client.send(req).await;
        *tally.lock().unwrap_or_else(PoisonError::into_inner).answers.entry(kind(&answer)).or_insert(0) += 1;
        attempt += 1;
        let wait = match answer.status {
            503 => answer.header("retry-after").and_then(|s| s.parse::<u64>().ok()).unwrap_or(1).min(2) * 1000,
            0 => 200,
            409 if answer.error_code() == "idempotency_key_in_use" => 200,
            _ => return answer,
        };
        if attempt >= 8 {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

async fn relogin(world: &World, shopper: &Shopper) -> anyhow::Result<String> {
    super::actors::login(world, &shopper.client, &shopper.email).await
}

struct JudgeInput<'a> {
    tally: Tally,
    walks: &'a [Walk],
    product: &'a str,
    stock: i64,
    stock_left: Option<i64>,
    sale_seconds: f64,
    settle_seconds: f64,
}

/// The sale's invariants, from what the clients were answered and what the
/// customers' listings and the product hold afterwards.
fn judge(input: JudgeInput<'_>) -> Flash {
    let JudgeInput { tally, walks, product, stock, stock_left, sale_seconds, settle_seconds } = input;
    let mut invariants = Vec::new();

    let unclean: Vec<String> = tally
        .answers
        .iter()
        .filter(|(kind, _)| !CLEAN.contains(&kind.as_str()))
        .map(|(kind, count)| format!("{kind} x{count}"))
        .collect();
    let answered: u64 = tally.answers.values().sum();
    invariants.push(Invariant {
        name: "flash sale: every answer a clean 201, 409 or 503 with Retry-After",
        passed: unclean.is_empty() && answered > 0,
        detail: if unclean.is_empty() {
            format!(
                "{answered} answers: {}",
                tally.answers.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
            )
        } else {
            format!("{answered} answers, not clean: {}", unclean.join(", "))
        },
    });

    // The orders the listings hold for the product, by id.
    let listed: HashMap<String, Value> = walks
        .iter()
        .flat_map(|walk| walk.items.iter().filter(|order| holds(order, product)).cloned())
        .filter_map(|order| Some((order["id"].as_str()?.to_owned(), order)))
        .collect();
    let walk_errors: Vec<String> = walks.iter().filter_map(|walk| walk.error.clone()).collect();
    let units_of = |order: &Value| -> i64 {
        order["lines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|line| line["product_id"] == product)
            .filter_map(|line| line["quantity"].as_i64())
            .sum()
    };
    let by_status = |status: &str| listed.values().filter(|order| order["status"] == status).collect::<Vec<_>>();
    let confirmed = by_status("confirmed");
    let confirmed_units: i64 = confirmed.iter().map(|order| units_of(order)).sum();
    let rejected = by_status("rejected").len();
    let undecided = listed.len() - confirmed.len() - rejected;
    let sold = stock_left.map(|left| stock - left);
    invariants.push(Invariant {
        name: "flash sale: no oversell, every order decided",
        passed: stock_left.is_some_and(|left| left >= 0)
            && sold == Some(confirmed_units)
            && confirmed_units <= stock
            && undecided == 0
            && walk_errors.is_empty(),
        detail: format!(
            "initial stock {stock}, left {}: {} units left the stock; {} confirmed orders hold {confirmed_units} units; {rejected} rejected; {undecided} not decided{}",
            stock_left.map_or_else(|| "unknown".to_owned(), |left| left.to_string()),
            sold.map_or_else(|| "unknown".to_owned(), |sold| sold.to_string()),
            confirmed.len(),
            if walk_errors.is_empty() { String::new() } else { format!("; listings failed: {}", walk_errors.join("; ")) }
        ),
    });

    let keys: HashSet<&str> = tally.orders.iter().map(|order| order.key.as_str()).collect();
    let ids: HashSet<&str> = tally.orders.iter().map(|order| order.id.as_str()).collect();
    let listed_ids: HashSet<&str> = listed.keys().map(String::as_str).collect();
    let not_placed = listed_ids.difference(&ids).count();
    let missing = ids.difference(&listed_ids).count();
    let wrong_owner =
        tally.orders.iter().filter(|order| listed.get(&order.id).is_some_and(|l| l["owner_id"] != order.owner)).count();
    let failures: Vec<&String> = tally.failures.iter().filter(|f| !f.is_empty()).collect();
    invariants.push(Invariant {
        name: "flash sale: one order per idempotency key",
        passed: keys.len() == tally.orders.len()
            && ids.len() == keys.len()
            && not_placed == 0
            && missing == 0
            && wrong_owner == 0
            && tally.failures.is_empty(),
        detail: format!(
            "{} keys answered 201 -> {} distinct orders; the customers' listings hold {} orders of the product ({not_placed} not placed by a key, {missing} missing, {wrong_owner} under another owner); {} pairs in flight and {} retries, {} answered otherwise{}",
            keys.len(),
            ids.len(),
            listed_ids.len(),
            tally.duplicates_in_flight,
            tally.retries,
            tally.failures.len(),
            if failures.is_empty() {
                String::new()
            } else {
                format!(": {}", failures.iter().take(3).map(|f| f.as_str()).collect::<Vec<_>>().join("; "))
            }
        ),
    });

    let decided: Vec<OffsetDateTime> = listed
        .values()
        .filter(|order| order["status"] != "pending")
        .filter_map(|order| OffsetDateTime::parse(order["updated_at"].as_str()?, &Rfc3339).ok())
        .collect();
    let decided_per_second = match (decided.iter().min(), decided.iter().max()) {
        (Some(first), Some(last)) if decided.len() > 1 && last > first => {
            Some((decided.len() - 1) as f64 / (*last - *first).as_seconds_f64())
        }
        _ => None,
    };
    Flash {
        seconds: sale_seconds,
        customers: 0,
        per_minute: 0,
        stock,
        answers: tally.answers,
        orders: tally.orders.len(),
        units_asked: tally.orders.iter().map(|order| order.units).sum(),
        confirmed: confirmed.len(),
        confirmed_units,
        rejected,
        undecided,
        stock_left,
        settle_seconds,
        decided_per_second,
        route: None,
        invariants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCT: &str = "01PRODUCT";

    fn order(id: &str, owner: &str, status: &str, units: i64, updated_at: &str) -> Value {
        json!({
            "id": id, "owner_id": owner, "status": status, "updated_at": updated_at,
            "lines": [{"product_id": PRODUCT, "quantity": units}],
        })
    }

    /// Two orders (2 + 1 units) of a product of 5 units, one confirmed,
    /// one rejected, every answer clean.
    fn sale() -> (Tally, Vec<Walk>) {
        let mut tally = Tally::default();
        tally.answers.insert("201".into(), 2);
        tally.answers.insert("409 open_order_limit".into(), 1);
        tally.answers.insert("503 with Retry-After".into(), 1);
        tally.orders.push(Order { key: "k1".into(), owner: "u1".into(), id: "o1".into(), units: 2 });
        tally.orders.push(Order { key: "k2".into(), owner: "u2".into(), id: "o2".into(), units: 1 });
        let other = json!({"id": "other", "owner_id": "u2", "status": "confirmed", "lines": [{"product_id": "x", "quantity": 9}]});
        let walks = vec![
            Walk {
                items: vec![order("o1", "u1", "confirmed", 2, "2026-12-06T10:00:00Z")],
                totals: vec![1],
                error: None,
            },
            Walk {
                items: vec![order("o2", "u2", "rejected", 1, "2026-12-06T10:00:02Z"), other],
                totals: vec![2],
                error: None,
            },
        ];
        (tally, walks)
    }

    fn judged(tally: Tally, walks: &[Walk], stock_left: Option<i64>) -> Flash {
        judge(JudgeInput {
            tally,
            walks,
            product: PRODUCT,
            stock: 5,
            stock_left,
            sale_seconds: 1.0,
            settle_seconds: 0.0,
        })
    }

    fn verdicts(tally: Tally, walks: &[Walk], stock_left: Option<i64>) -> Vec<bool> {
        judged(tally, walks, stock_left).invariants.iter().map(|invariant| invariant.passed).collect()
    }

    #[test]
    fn a_clean_sale_passes_and_reports_its_decision_rate() {
        let (tally, walks) = sale();
        let flash = judged(tally, &walks, Some(3));
        assert!(flash.invariants.iter().all(|invariant| invariant.passed), "{:?}", flash.invariants);
        assert_eq!((flash.confirmed, flash.confirmed_units, flash.rejected, flash.undecided), (1, 2, 1, 0));
        assert_eq!(flash.decided_per_second, Some(0.5), "two decisions two seconds apart");
    }

    #[test]
    fn a_500_no_answer_or_a_503_without_retry_after_is_not_clean() {
        for kind in ["500 internal", "503 without Retry-After", "no answer", "429 rate_limited"] {
            let (mut tally, walks) = sale();
            tally.answers.insert(kind.into(), 1);
            assert!(!verdicts(tally, &walks, Some(3))[0], "{kind}");
        }
    }

    #[test]
    fn stock_that_left_without_a_confirmed_order_is_an_oversell() {
        let (tally, walks) = sale();
        assert!(!verdicts(tally, &walks, Some(2))[1], "3 units left the stock, 2 are held");
        let (tally, walks) = sale();
        assert!(!verdicts(tally, &walks, Some(-1))[1], "negative stock");
        let (tally, mut walks) = sale();
        walks[0].items[0]["status"] = json!("pending");
        assert!(!verdicts(tally, &walks, Some(5))[1], "an order not decided");
    }

    #[test]
    fn an_order_no_key_answered_or_a_key_with_two_orders_fails() {
        let (tally, mut walks) = sale();
        walks[1].items.push(order("o3", "u2", "rejected", 1, "2026-12-06T10:00:03Z"));
        assert!(!verdicts(tally, &walks, Some(3))[2], "a listed order no key created");
        let (mut tally, walks) = sale();
        tally.orders.push(Order { key: "k1".into(), owner: "u1".into(), id: "o9".into(), units: 1 });
        assert!(!verdicts(tally, &walks, Some(3))[2], "one key, two orders");
        let (mut tally, walks) = sale();
        tally.fail("key k1: the retry answered 409".into());
        assert!(!verdicts(tally, &walks, Some(3))[2], "a retry that was not a replay");
    }
}
