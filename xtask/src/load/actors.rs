//! The simulated people: customers (register, log in, browse, order with
//! Idempotency-Keys and retries, cancel) and admins (ship confirmed orders,
//! restock with If-Match), and the setup that makes the run's admins and
//! products.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Answer, Client, Req};
use super::lifecycle::Account;
use super::world::{PASSWORD, Placed, Product, Shopper, User, World, admin_address, customer_address};

/// Below this many units an admin restocks a product.
const LOW_WATER: i64 = 60;
const ORDER_STATUSES: [&str; 5] = ["pending", "confirmed", "rejected", "shipped", "cancelled"];

pub fn statuses() -> [&'static str; 5] {
    ORDER_STATUSES
}

/// Logs in; the token, or an error naming the answer.
pub async fn login(world: &World, client: &Client, email: &str) -> anyhow::Result<String> {
    let body = json!({"email": email, "password": world.password_of(email)});
    let answer = client.send(Req::post("POST /auth/login", "/auth/login").json(&body)).await;
    world.ledger().activity.logins += 1;
    if answer.status != 200 {
        world.surprise("POST /auth/login", &answer);
        bail!("login of {email} answered {}", answer.describe());
    }
    answer.json()["token"].as_str().map(str::to_owned).context("login answered no token")
}

/// An admin account, made the way `cargo xtask create-admin` makes one
/// (admins cannot register), its user-created event published at once so
/// the welcome email does not wait for the relay's schedule.
pub async fn make_admin(
    stack: &local_cloud::stack::LocalStack,
    settings: &adapters::config::ShopSettings,
    email: &str,
) -> anyhow::Result<String> {
    let table = adapters::dynamo::Table::new(stack.cloud.dynamodb().await, settings.table_name.clone());
    let users = adapters::dynamo::DynamoUserStore::new(table.clone());
    let hasher = framework::auth::PasswordHasher::new();
    let email = domain::Email::parse(email).map_err(|error| anyhow::anyhow!("{error}"))?;
    let password = domain::Password::parse_new(PASSWORD.into()).map_err(|error| anyhow::anyhow!("{error}"))?;
    let (user, event) = app::auth::create_user(&users, &hasher, email, &password, domain::Role::Admin, "load")
        .await
        .map_err(|error| anyhow::anyhow!("creating an admin: {error}"))?;
    let publisher = adapters::outbox::OutboxPublisher::new(table, stack.cloud.sqs().await, settings.queue_urls.clone());
    domain::ports::Publisher::publish_after_commit(&publisher, &event).await;
    Ok(user.id.to_string())
}

/// Verifies a registered customer's address through the operator's door
/// (as following the emailed link would, without reading it back from
/// moto); returns the account's id. Only a verified account may order.
async fn verified(world: &World, email: &str) -> anyhow::Result<String> {
    let email = domain::Email::parse(email).map_err(|error| anyhow::anyhow!("{error}"))?;
    let user = app::registration::mark_verified(&world.users, &email)
        .await
        .map_err(|error| anyhow::anyhow!("verifying {email}: {error}"))?;
    Ok(user.id.to_string())
}

/// Creates the run's products through the API; the first is scarce.
pub async fn make_products(world: &World, client: &Client, token: &str, count: usize) -> anyhow::Result<Vec<Product>> {
    let mut products = Vec::new();
    for index in 0..count.max(2) {
        let scarce = index == 0;
        let sku = format!("LD-{}-{index}", world.run.to_uppercase());
        let initial_stock = if scarce { 4 } else { 150 };
        let body = json!({
            "sku": sku,
            "name": format!("Load product {index}"),
            "description": "made by cargo xtask load",
            "price": {"amount_minor": 150 + 25 * index, "currency": "EUR"},
            "stock": initial_stock,
        });
        let answer = client.send(Req::post("POST /products", "/products").token(token).json(&body)).await;
        if answer.status != 201 {
            bail!("creating product {sku} answered {}", answer.describe());
        }
        let id = answer.json()["id"].as_str().context("product without id")?.to_owned();
        products.push(Product { id, sku, initial_stock, scarce });
    }
    Ok(products)
}

/// One customer for the whole run. Errors end only this customer.
pub async fn customer(world: Arc<World>, index: usize) -> anyhow::Result<()> {
    let client = world.client(customer_address(index));
    let mut rng = StdRng::seed_from_u64(world.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let email = world.customer_email(index);
    let answer = client
        .send(Req::post("POST /auth/register", "/auth/register").json(&json!({"email": email, "password": PASSWORD})))
        .await;
    if answer.status != 202 {
        world.surprise("POST /auth/register", &answer);
        bail!("registering {email} answered {}", answer.describe());
    }
    let id = verified(&world, &email).await?;
    {
        let mut ledger = world.ledger();
        ledger.users.push(User { id: id.clone(), email: email.clone(), admin: false });
        ledger.activity.registrations += 1;
    }
    // A lifecycle customer keeps its sign-in going with refresh tokens.
    let mut lifecycle = (index < world.lifecycle_customers).then(|| Account::new(&email, PASSWORD));
    let mut token = match lifecycle.as_mut() {
        Some(account) => account.sign_in(&world, &client).await?,
        None => login(&world, &client, &email).await?,
    };
    let mut mine: Vec<String> = Vec::new();
    while Instant::now() < world.deadline {
        let mut unauthorised = false;
        browse(&world, &client, &mut rng).await;
        if Instant::now() < world.deadline && rng.random_bool(0.6) {
            let answer = place(&world, &client, &token, &id, &mut rng).await;
            unauthorised |= answer.as_ref().is_err_and(|status| *status == 401);
            if let Ok(order) = answer {
                mine.push(order);
            }
        }
        if Instant::now() < world.deadline && !mine.is_empty() && rng.random_bool(0.15) {
            let order = mine.choose(&mut rng).expect("not empty").clone();
            unauthorised |= cancel(&world, &client, &token, &order, &mut rng).await == 401;
        }
        if Instant::now() < world.deadline && rng.random_bool(0.25) {
            unauthorised |= look_at_orders(&world, &client, &token, &mine, &mut rng).await == 401;
        }
        if Instant::now() >= world.deadline {
            break;
        }
        if let Some(account) = lifecycle.as_mut() {
            if let Some(fresh) = account.step(&world, &client, &mut rng, unauthorised).await? {
                token = fresh;
            }
        } else if unauthorised || rng.random_bool(0.03) {
            token = login(&world, &client, &email).await?;
        }
    }
    if let Some(account) = lifecycle.as_mut() {
        // Its access token still works for the flash sale, for its few minutes.
        account.log_out(&world, &client).await;
    }
    world.keep_shopper(Shopper { id, email, token, client });
    Ok(())
}

/// A page or three of the catalogue, and sometimes one product.
async fn browse(world: &World, client: &Client, rng: &mut StdRng) {
    let mut path = format!("/products?limit={}", rng.random_range(3..=10));
    for _ in 0..rng.random_range(1..=3) {
        let answer = client.send(Req::get("GET /products", path.clone())).await;
        world.ledger().activity.catalogue_pages += 1;
        if answer.status != 200 {
            world.surprise("GET /products", &answer);
            return;
        }
        let page = answer.json();
        let Some(cursor) = page["pagination"]["next_cursor"].as_str() else { break };
        let limit = page["pagination"]["limit"].as_u64().unwrap_or(10);
        path = format!("/products?limit={limit}&cursor={cursor}");
    }
    if rng.random_bool(0.3) {
        let product = world.products.choose(rng).expect("products exist");
        let answer = client.send(Req::get("GET /products/{id}", format!("/products/{}", product.id))).await;
        if answer.status != 200 {
            world.surprise("GET /products/{id}", &answer);
        }
    }
}

/// POSTs an order until it has a definite answer: a retry after no answer,
/// a 5xx or a 409 `idempotency_key_in_use` carries the same key and the same
/// bytes, which is what the key is for.
async fn post_order(client: &Client, token: &str, key: &str, body: &str, paced: bool) -> Answer {
    let mut attempt = 0;
    loop {
        let mut req = Req::post("POST /orders", "/orders").token(token).header("idempotency-key", key).body(body);
        if !paced {
            req = req.unpaced();
        }
        let answer = client.send(req).await;
        let in_progress = answer.status == 409 && answer.error_code() == "idempotency_key_in_use";
        attempt += 1;
        if attempt >= 8 || !(answer.status == 0 || answer.status >= 500 || answer.status == 429 || in_progress) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
    }
}

/// The same outcome, byte for byte: status, body and Location.
fn same(first: &Answer, again: &Answer) -> bool {
    first.status == again.status && first.body == again.body && first.header("location") == again.header("location")
}

/// Places one order (sometimes retried, sometimes twice at once, sometimes
/// replayed with another body); its id, or the status that refused it.
async fn place(world: &World, client: &Client, token: &str, owner: &str, rng: &mut StdRng) -> Result<String, u16> {
    let count = rng.random_range(1..=3).min(world.products.len() - 1);
    let mut picked: Vec<usize> =
        rand::seq::index::sample(rng, world.products.len() - 1, count).into_iter().map(|index| index + 1).collect();
    // The scarce product is in about one order in ten.
    if !picked.contains(&0) && rng.random_bool(0.1) {
        picked[0] = 0;
    }
    picked.sort_unstable();
    picked.dedup();
    let lines: Vec<(usize, u32)> = picked.into_iter().map(|p| (p, rng.random_range(1..=3))).collect();
    let body = order_body(world, &lines);
    let key = format!("load-{}", ulid::Ulid::new());

    let concurrent = rng.random_bool(0.1);
    let first = if concurrent {
        let (a, b) =
            tokio::join!(post_order(client, token, &key, &body, true), post_order(client, token, &key, &body, false));
        let identical = same(&a, &b) && a.status == 201;
        let originals = [&a, &b].iter().filter(|x| x.header("idempotent-replayed").is_none()).count();
        // A placement the hold caps refuse stores nothing, so both copies are
        // refused alike and neither is a replay: consistent, nothing placed.
        let capped = |answer: &Answer| {
            answer.status == 409
                && matches!(answer.json()["error"]["code"].as_str(), Some("open_order_limit" | "product_hold_limit"))
        };
        let both_capped = capped(&a) && capped(&b);
        let mut ledger = world.ledger();
        ledger.activity.concurrent_duplicates += 1;
        if (identical && originals == 1) || both_capped {
            ledger.activity.concurrent_duplicates_identical += 1;
        } else if ledger.idempotency_failures.len() < 20 {
            ledger.idempotency_failures.push(format!(
                "key {key}: two requests in flight answered {} and {} ({originals} not marked as replays)",
                a.describe(),
                b.describe()
            ));
        }
        a
    } else {
        post_order(client, token, &key, &body, true).await
    };
    if first.status != 201 {
        let capped = matches!(first.json()["error"]["code"].as_str(), Some("open_order_limit" | "product_hold_limit"));
        if first.status == 409 && capped {
            // A customer at the hoarding caps: expected, until an order of theirs ends.
            world.ledger().activity.placements_capped += 1;
            return Err(first.status);
        }
        if first.status == 0 || first.status >= 500 {
            world.ledger().activity.placements_without_answer += 1;
        }
        world.surprise("POST /orders", &first);
        return Err(first.status);
    }
    let order = first.json();
    let id = order["id"].as_str().unwrap_or_default().to_owned();
    {
        let mut ledger = world.ledger();
        ledger.activity.orders_placed += 1;
        ledger.orders.push(Placed {
            key: key.clone(),
            owner: owner.to_owned(),
            id: id.clone(),
            lines: lines.clone(),
            location: first.header("location").map(str::to_owned),
        });
    }
    if rng.random_bool(0.3) {
        let again = post_order(client, token, &key, &body, true).await;
        let identical = same(&first, &again) && again.header("idempotent-replayed") == Some("true");
        let mut ledger = world.ledger();
        ledger.activity.retries_same_key += 1;
        if identical {
            ledger.activity.retries_identical += 1;
        } else if ledger.idempotency_failures.len() < 20 {
            ledger.idempotency_failures.push(format!(
                "key {key}: the retry answered {} ({} bytes) after {} ({} bytes)",
                again.describe(),
                again.body.len(),
                first.describe(),
                first.body.len()
            ));
        }
    }
    if rng.random_bool(0.05) {
        let mut other = lines.clone();
        other[0].1 += 1;
        let answer = post_order(client, token, &key, &order_body(world, &other), true).await;
        let mut ledger = world.ledger();
        ledger.activity.replays_other_body += 1;
        if answer.status == 422 {
            ledger.activity.replays_other_body_422 += 1;
        } else if ledger.idempotency_failures.len() < 20 {
            ledger.idempotency_failures.push(format!("key {key}: another body answered {}", answer.describe()));
        }
    }
    Ok(id)
}

fn order_body(world: &World, lines: &[(usize, u32)]) -> String {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(product, quantity)| json!({"product_id": world.products[*product].id, "quantity": quantity}))
        .collect();
    json!({ "lines": lines }).to_string()
}

/// Cancels one of the customer's orders: DELETE without a precondition, or
/// PATCH with the ETag just read. Returns the final status.
async fn cancel(world: &World, client: &Client, token: &str, order: &str, rng: &mut StdRng) -> u16 {
    let path = format!("/orders/{order}");
    let (route, answer) = if rng.random_bool(0.5) {
        ("DELETE /orders/{id}", client.send(Req::new(Method::DELETE, "DELETE /orders/{id}", path).token(token)).await)
    } else {
        let read = client.send(Req::get("GET /orders/{id}", path.clone()).token(token)).await;
        if read.status != 200 {
            world.surprise("GET /orders/{id}", &read);
            return read.status;
        }
        let etag = read.header("etag").unwrap_or("*").to_owned();
        let req = Req::new(Method::PATCH, "PATCH /orders/{id}", path)
            .token(token)
            .header("if-match", etag)
            .json(&json!({"status": "cancelled"}));
        ("PATCH /orders/{id}", client.send(req).await)
    };
    let mut ledger = world.ledger();
    match answer.status {
        200 => ledger.activity.cancels_ok += 1,
        409 => ledger.activity.cancels_refused_409 += 1,
        412 => ledger.activity.cancels_refused_412 += 1,
        _ => {
            drop(ledger);
            world.surprise(route, &answer);
        }
    }
    answer.status
}

/// The customer's own listing (a page, sometimes by status) or one order.
async fn look_at_orders(world: &World, client: &Client, token: &str, mine: &[String], rng: &mut StdRng) -> u16 {
    let answer = if !mine.is_empty() && rng.random_bool(0.5) {
        let order = mine.choose(rng).expect("not empty");
        let answer = client.send(Req::get("GET /orders/{id}", format!("/orders/{order}")).token(token)).await;
        if answer.status != 200 {
            world.surprise("GET /orders/{id}", &answer);
        }
        answer
    } else {
        let status = if rng.random_bool(0.3) {
            format!("&status={}", ORDER_STATUSES.choose(rng).expect("statuses"))
        } else {
            String::new()
        };
        let answer = client.send(Req::get("GET /orders", format!("/orders?limit=10{status}")).token(token)).await;
        if answer.status != 200 {
            world.surprise("GET /orders", &answer);
        }
        answer
    };
    answer.status
}

/// One admin for the whole run: ships some of the run's confirmed orders,
/// restocks its products, looks at the listings.
pub async fn admin(world: Arc<World>, index: usize, email: String) -> anyhow::Result<()> {
    let client = world.client(admin_address(index));
    let mut rng = StdRng::seed_from_u64(world.seed ^ 0xad ^ (index as u64) << 32);
    let mut token = login(&world, &client, &email).await?;
    let mut logged_in = Instant::now();
    while Instant::now() < world.deadline {
        ship_some(&world, &client, &token, &mut rng).await;
        if Instant::now() >= world.deadline {
            break;
        }
        let candidates: Vec<usize> = (0..world.products.len()).filter(|p| !world.products[*p].scarce).collect();
        if let Some(product) = candidates.choose(&mut rng) {
            restock(&world, &client, &token, *product, &mut rng).await;
        }
        if rng.random_bool(0.5) {
            // Any product, the scarce one included: where orders race most.
            edit_unpinned(&world, &client, &token, rng.random_range(0..world.products.len())).await;
        }
        if rng.random_bool(0.2) {
            let (route, path) = if rng.random_bool(0.5) {
                ("GET /users", "/users?limit=20".to_owned())
            } else {
                (
                    "GET /orders",
                    format!("/orders?limit=50&status={}", ORDER_STATUSES.choose(&mut rng).expect("statuses")),
                )
            };
            let answer = client.send(Req::get(route, path).token(&token)).await;
            if answer.status != 200 {
                world.surprise(route, &answer);
            }
        }
        if logged_in.elapsed() > Duration::from_secs(600) {
            token = login(&world, &client, &email).await?;
            logged_in = Instant::now();
        }
    }
    Ok(())
}

/// Ships a few of the run's confirmed orders, each PATCH with If-Match; on
/// 412 the order is read again and shipped if it is still confirmed.
async fn ship_some(world: &World, client: &Client, token: &str, rng: &mut StdRng) {
    let answer = client.send(Req::get("GET /orders", "/orders?limit=50&status=confirmed").token(token)).await;
    if answer.status != 200 {
        world.surprise("GET /orders", &answer);
        return;
    }
    let page = answer.json();
    let mine: std::collections::HashSet<String> = world.ledger().orders.iter().map(|order| order.id.clone()).collect();
    let confirmed: Vec<(String, u64)> = page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|order| order["id"].as_str().is_some_and(|id| mine.contains(id)))
        .filter_map(|order| Some((order["id"].as_str()?.to_owned(), order["version"].as_u64()?)))
        .collect();
    for (id, version) in confirmed.choose_multiple(rng, 3) {
        if Instant::now() >= world.deadline || !rng.random_bool(0.6) {
            continue;
        }
        let path = format!("/orders/{id}");
        let mut etag = format!("\"{version}\"");
        for _ in 0..4 {
            let req = Req::new(Method::PATCH, "PATCH /orders/{id}", path.clone())
                .token(token)
                .header("if-match", etag.clone())
                .json(&json!({"status": "shipped"}));
            let answer = client.send(req).await;
            match answer.status {
                200 => {
                    world.ledger().activity.ships_ok += 1;
                    break;
                }
                409 => {
                    world.ledger().activity.ships_refused_409 += 1;
                    break;
                }
                412 => {
                    world.ledger().activity.ships_412_reread += 1;
                    let read = client.send(Req::get("GET /orders/{id}", path.clone()).token(token)).await;
                    if read.status != 200 || read.json()["status"] != "confirmed" {
                        break;
                    }
                    read.header("etag").unwrap_or("*").clone_into(&mut etag);
                }
                _ => {
                    world.surprise("PATCH /orders/{id}", &answer);
                    break;
                }
            }
        }
    }
}

/// Adds stock to a product that runs low (or now and then to any): PUT
/// with the ETag read; on 412 (an order took stock meanwhile) read again
/// and retry. The units added are exactly the difference to the stock read,
/// since If-Match guarantees nothing changed in between.
async fn restock(world: &World, client: &Client, token: &str, product: usize, rng: &mut StdRng) {
    let path = format!("/products/{}", world.products[product].id);
    for attempt in 0..10 {
        let read = client.send(Req::get("GET /products/{id}", path.clone()).token(token)).await;
        if read.status != 200 {
            world.surprise("GET /products/{id}", &read);
            return;
        }
        let current = read.json();
        let stock = current["stock"].as_i64().unwrap_or_default();
        if attempt == 0 && stock >= LOW_WATER && !rng.random_bool(0.15) {
            return;
        }
        let added = rng.random_range(60..=120);
        let body = json!({
            "sku": current["sku"],
            "name": current["name"],
            "description": current["description"],
            "price": current["price"],
            "stock": stock + added,
            "active": current["active"],
        });
        let etag = read.header("etag").unwrap_or("*").to_owned();
        let answer = client
            .send(
                Req::new(Method::PUT, "PUT /products/{id}", path.clone())
                    .token(token)
                    .header("if-match", etag)
                    .json(&body),
            )
            .await;
        let mut ledger = world.ledger();
        match answer.status {
            200 => {
                ledger.restocked[product] += added;
                ledger.activity.restocks += 1;
                ledger.activity.restock_units += added;
                return;
            }
            412 => ledger.activity.restock_412_reread += 1,
            status => {
                if status == 0 || status >= 500 {
                    ledger.uncertain_restock[product] += added;
                }
                drop(ledger);
                world.surprise("PUT /products/{id}", &answer);
                return;
            }
        }
    }
}

/// Renames a product with `If-Match: *`, sending the stock it read: an edit
/// racing the orders that reserve the product's stock. Either the stock has
/// not moved (200, stock kept) or it has (409 `stock_needs_version`); it never
/// writes the old number over a reservation, which the stock-conservation
/// invariant checks.
async fn edit_unpinned(world: &World, client: &Client, token: &str, product: usize) {
    let path = format!("/products/{}", world.products[product].id);
    let read = client.send(Req::get("GET /products/{id}", path.clone()).token(token)).await;
    if read.status != 200 {
        world.surprise("GET /products/{id}", &read);
        return;
    }
    let current = read.json();
    let description = format!("Edited after version {} without a pinned version.", current["version"]);
    let body = json!({
        "sku": current["sku"],
        "name": current["name"],
        "description": description,
        "price": current["price"],
        "stock": current["stock"],
        "active": current["active"],
    });
    let answer = client
        .send(Req::new(Method::PUT, "PUT /products/{id}", path).token(token).header("if-match", "*").json(&body))
        .await;
    let mut ledger = world.ledger();
    match (answer.status, answer.json()["error"]["code"].as_str()) {
        (200, _) => ledger.activity.unpinned_edits += 1,
        (409, Some("stock_needs_version")) => {
            ledger.activity.unpinned_edits += 1;
            ledger.activity.unpinned_edits_refused_409 += 1;
        }
        _ => {
            drop(ledger);
            world.surprise("PUT /products/{id}", &answer);
        }
    }
}

/// One request to every function the load uses, before the clock starts:
/// under `cargo lambda watch` a function's first request also starts (and
/// may first build) its process, which is not what the load measures. Its
/// data is the run's like any other: a user, three orders (two cancelled),
/// a restock of zero units. Returns the warm-up user's address and the
/// order left to be confirmed, whose emails show the consumers are up.
pub async fn warm_up(world: &World, admin_token: &str) -> anyhow::Result<(String, String)> {
    let client = world.checker(12);
    let email = format!("load.{}.warmup@example.com", world.run);
    let answer = client
        .send(Req::post("POST /auth/register", "/auth/register").json(&json!({"email": email, "password": PASSWORD})))
        .await;
    if answer.status != 202 {
        bail!("warm-up registration answered {}", answer.describe());
    }
    let id = verified(world, &email).await?;
    world.ledger().users.push(User { id: id.clone(), email: email.clone(), admin: false });
    let token = login(world, &client, &email).await?;
    super::lifecycle::warm_up(world, &client, &email).await?;
    let product = world.products.iter().position(|p| !p.scarce).context("a product that is not scarce")?;
    let product_path = format!("/products/{}", world.products[product].id);
    for (route, path, token) in [
        ("GET /users/me", "/users/me".to_owned(), Some(&token)),
        ("GET /products", "/products?limit=2".to_owned(), None),
        ("GET /products/{id}", product_path.clone(), None),
        ("GET /orders", "/orders?limit=2".to_owned(), Some(&token)),
        ("GET /users", "/users?limit=2".to_owned(), Some(&admin_token.to_owned())),
    ] {
        let mut req = Req::get(route, path);
        if let Some(token) = token {
            req = req.token(token);
        }
        let answer = client.send(req).await;
        if answer.status != 200 {
            bail!("warm-up {route} answered {}", answer.describe());
        }
    }
    let mut kept = String::new();
    for cancel in [Some(false), Some(true), None] {
        let key = format!("load-{}", ulid::Ulid::new());
        let lines = vec![(product, 1)];
        let answer = post_order(&client, &token, &key, &order_body(world, &lines), true).await;
        if answer.status != 201 {
            bail!("warm-up order answered {}", answer.describe());
        }
        let order = answer.json()["id"].as_str().context("order without id")?.to_owned();
        world.ledger().orders.push(Placed {
            key,
            owner: id.clone(),
            id: order.clone(),
            lines,
            location: answer.header("location").map(str::to_owned),
        });
        let Some(cancel_with_patch) = cancel else {
            kept = order;
            continue;
        };
        // A cancel can meet the consumer confirming the order (412): read and try again.
        let path = format!("/orders/{order}");
        let mut cancelled = false;
        for _ in 0..5 {
            let read = client.send(Req::get("GET /orders/{id}", path.clone()).token(&token)).await;
            let etag = read.header("etag").unwrap_or("*").to_owned();
            let answer = if cancel_with_patch {
                let body = json!({"status": "cancelled"});
                let req = Req::new(Method::PATCH, "PATCH /orders/{id}", path.clone()).token(&token);
                client.send(req.header("if-match", etag).json(&body)).await
            } else {
                client.send(Req::new(Method::DELETE, "DELETE /orders/{id}", path.clone()).token(&token)).await
            };
            if answer.status == 200 {
                cancelled = true;
                break;
            }
        }
        if !cancelled {
            bail!("the warm-up order {order} could not be cancelled");
        }
    }
    // A restock of nothing; a 412 (an order took stock meanwhile) reads again.
    for _ in 0..10 {
        let read = client.send(Req::get("GET /products/{id}", product_path.clone()).token(admin_token)).await;
        let current = read.json();
        let body = json!({
            "sku": current["sku"], "name": current["name"], "description": current["description"],
            "price": current["price"], "stock": current["stock"], "active": current["active"],
        });
        let etag = read.header("etag").unwrap_or("*").to_owned();
        let req = Req::new(Method::PUT, "PUT /products/{id}", product_path.clone()).token(admin_token);
        let answer = client.send(req.header("if-match", etag).json(&body)).await;
        match answer.status {
            200 => return Ok((email, kept)),
            412 => {}
            _ => bail!("warm-up PUT /products/{{id}} answered {}", answer.describe()),
        }
    }
    bail!("warm-up PUT /products/{{id}} answered 412 ten times")
}
