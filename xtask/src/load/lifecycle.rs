//! The account lifecycle under load: a share of the customers (`--lifecycle-share`)
//! keep their sign-in going with rotating refresh tokens instead of logging
//! in again, replay a rotated refresh token once (theft detection), reset
//! their password through the emailed link (read back from moto's SES), and
//! log out at the end. What each answer must be is checked as it comes and
//! tallied; [`invariants`] turns the tally into verdicts.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::checks::Invariant;
use super::client::{Answer, Client, Req};
use super::world::World;

/// How close to the end of its lifetime a reset link is taken as maybe
/// expired (whole-second rounding, and the time its request took).
const LINK_MARGIN: Duration = Duration::from_secs(2);
/// How long a customer waits for its reset email before giving up on it.
const EMAIL_PATIENCE: Duration = Duration::from_secs(60);
/// A reset starts only with this much of the load left: its email, its
/// link and the sign-ins after it fit in the run.
const RESET_NEEDS: Duration = Duration::from_secs(15);

/// Which invariant an unexpected answer breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Refresh,
    Replay,
    Logout,
    Reset,
}

/// What the lifecycle customers did and were answered.
#[derive(Debug, Default)]
pub struct Tally {
    pub customers: usize,
    /// Refreshes with a session's newest refresh token.
    pub refreshes: u64,
    pub refreshes_ok: u64,
    /// Refused 401 `invalid_token` after the token's lifetime may have run
    /// out (the documented expiry; the test stack's lifetime is seconds).
    pub refreshes_expired: u64,
    /// Tokens answered 200 more than once (must be none).
    pub accepted_twice: u64,
    /// Rotated tokens presented again, refused, and the session's newest token refused after them.
    pub replays: u64,
    pub replays_refused: u64,
    pub revoked_after_replay: u64,
    pub logouts: u64,
    pub logouts_ok: u64,
    pub refused_after_logout: u64,
    pub resets_requested: u64,
    pub reset_emails: u64,
    pub resets_confirmed: u64,
    /// Links that arrived, or were followed, when their lifetime may have run out (asked again).
    pub resets_expired: u64,
    pub old_session_refused: u64,
    pub old_password_refused: u64,
    pub new_password_accepted: u64,
    /// (address, whether the reset was confirmed): the emails a reset causes.
    pub resets: Vec<(String, bool)>,
    /// Unexpected answers, described (a few are kept).
    failures: Vec<(Kind, String)>,
    /// Every refresh token a refresh accepted.
    accepted: HashSet<String>,
}

impl Tally {
    fn fail(&mut self, kind: Kind, what: String) {
        if self.failures.len() < 40 {
            self.failures.push((kind, what));
        }
    }

    /// A few failures of `kind`, for an invariant's detail.
    fn examples(&self, kind: Kind) -> String {
        let matching: Vec<&str> =
            self.failures.iter().filter(|(k, _)| *k == kind).map(|(_, what)| what.as_str()).take(3).collect();
        if matching.is_empty() { String::new() } else { format!("; e.g. {}", matching.join("; ")) }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "customers": self.customers,
            "refreshes": self.refreshes,
            "refreshes_ok": self.refreshes_ok,
            "refreshes_expired": self.refreshes_expired,
            "accepted_twice": self.accepted_twice,
            "replays": self.replays,
            "replays_refused": self.replays_refused,
            "revoked_after_replay": self.revoked_after_replay,
            "logouts": self.logouts,
            "logouts_ok": self.logouts_ok,
            "refused_after_logout": self.refused_after_logout,
            "resets_requested": self.resets_requested,
            "reset_emails": self.reset_emails,
            "resets_confirmed": self.resets_confirmed,
            "resets_expired": self.resets_expired,
            "old_session_refused": self.old_session_refused,
            "old_password_refused": self.old_password_refused,
            "new_password_accepted": self.new_password_accepted,
        })
    }
}

/// A refresh token as the client holds it, with when the request that got it was sent.
struct Held {
    token: String,
    asked_at: Instant,
}

/// One lifecycle customer's sign-in.
pub struct Account {
    email: String,
    password: String,
    refresh: Option<Held>,
    /// The token the last refresh rotated out.
    rotated: Option<String>,
    reset_done: bool,
    replayed: bool,
    steps: u32,
}

fn refused(answer: &Answer) -> bool {
    answer.status == 401 && answer.error_code() == "invalid_token"
}

impl Account {
    pub fn new(email: &str, password: &str) -> Self {
        Self {
            email: email.to_owned(),
            password: password.to_owned(),
            refresh: None,
            rotated: None,
            reset_done: false,
            replayed: false,
            steps: 0,
        }
    }

    /// Logs in (as [`super::actors::login`] does) and keeps the refresh token; the access token.
    pub async fn sign_in(&mut self, world: &World, client: &Client) -> anyhow::Result<String> {
        let asked_at = Instant::now();
        let body = json!({"email": self.email, "password": self.password});
        let answer = client.send(Req::post("POST /auth/login", "/auth/login").json(&body)).await;
        world.ledger().activity.logins += 1;
        if answer.status != 200 {
            world.surprise("POST /auth/login", &answer);
            bail!("login of {} answered {}", self.email, answer.describe());
        }
        let signed_in = answer.json();
        let token = signed_in["refresh_token"].as_str().context("login answered no refresh token")?.to_owned();
        self.refresh = Some(Held { token, asked_at });
        signed_in["token"].as_str().map(str::to_owned).context("login answered no token")
    }

    /// One step of the customer's loop, where another customer would
    /// sometimes log in again: reset the password once (early in the run),
    /// else refresh when the access token was refused or now and then,
    /// replaying the token just rotated once. A new access token, if any.
    pub async fn step(
        &mut self,
        world: &World,
        client: &Client,
        rng: &mut StdRng,
        unauthorised: bool,
    ) -> anyhow::Result<Option<String>> {
        self.steps += 1;
        let left = world.deadline.saturating_duration_since(Instant::now());
        if !self.reset_done && self.steps >= 2 && left > RESET_NEEDS {
            self.reset_done = true;
            return self.reset(world, client).await.map(Some);
        }
        // Refresh well within the refresh token's lifetime (seconds on the test stack).
        let due = self.refresh.as_ref().is_some_and(|held| held.asked_at.elapsed() * 3 > world.refresh_ttl);
        if !(unauthorised || due || rng.random_bool(0.3)) {
            return Ok(None);
        }
        let Some(access) = self.refresh(world, client).await else {
            return self.sign_in(world, client).await.map(Some);
        };
        if !self.replayed && rng.random_bool(0.3) {
            self.replayed = true;
            return self.replay(world, client).await.map(Some);
        }
        Ok(Some(access))
    }

    /// Refreshes with the newest token: 200 with a new one, or (only once
    /// the token may have expired) 401 `invalid_token`. The new access
    /// token, or `None` when the session is over (the caller signs in again).
    async fn refresh(&mut self, world: &World, client: &Client) -> Option<String> {
        let held = self.refresh.take()?;
        let asked_at = Instant::now();
        let answer = client
            .send(Req::post("POST /auth/refresh", "/auth/refresh").json(&json!({"refresh_token": held.token})))
            .await;
        // The server's clock started no earlier than the issuing request was
        // sent and checked no later than this answer came: younger than the
        // lifetime (less a second of whole-second rounding), it must work.
        let surely_alive = held.asked_at.elapsed() + Duration::from_secs(1) < world.refresh_ttl;
        let mut ledger = world.ledger();
        let tally = &mut ledger.lifecycle;
        tally.refreshes += 1;
        let body = answer.json();
        match (answer.status, body["refresh_token"].as_str(), body["token"].as_str()) {
            (200, Some(next), Some(access)) if next != held.token => {
                tally.refreshes_ok += 1;
                if !tally.accepted.insert(held.token.clone()) {
                    tally.accepted_twice += 1;
                    tally.fail(Kind::Replay, format!("{}: a refresh token was accepted a second time", self.email));
                }
                let access = access.to_owned();
                self.refresh = Some(Held { token: next.to_owned(), asked_at });
                self.rotated = Some(held.token);
                Some(access)
            }
            _ if refused(&answer) && !surely_alive => {
                tally.refreshes_expired += 1;
                None
            }
            _ => {
                tally.fail(
                    Kind::Refresh,
                    format!(
                        "{}: a refresh with the newest token, {:.1} s after it was issued, answered {}",
                        self.email,
                        held.asked_at.elapsed().as_secs_f64(),
                        answer.describe()
                    ),
                );
                None
            }
        }
    }
}

impl Account {
    /// Presents the token just rotated out again, as a thief who copied it
    /// would: refused, and the session's newest token with it (the whole
    /// session is revoked). Signs in again; the new access token.
    async fn replay(&mut self, world: &World, client: &Client) -> anyhow::Result<String> {
        let (Some(old), Some(newest)) = (self.rotated.take(), self.refresh.take()) else {
            return self.sign_in(world, client).await;
        };
        let again =
            client.send(Req::post("POST /auth/refresh", "/auth/refresh").json(&json!({"refresh_token": old}))).await;
        let newest_answer = client
            .send(Req::post("POST /auth/refresh", "/auth/refresh").json(&json!({"refresh_token": newest.token})))
            .await;
        {
            let mut ledger = world.ledger();
            let tally = &mut ledger.lifecycle;
            tally.replays += 1;
            if refused(&again) {
                tally.replays_refused += 1;
            } else {
                if again.status == 200 {
                    tally.accepted_twice += 1;
                }
                tally.fail(
                    Kind::Replay,
                    format!("{}: a rotated refresh token presented again answered {}", self.email, again.describe()),
                );
            }
            if refused(&newest_answer) {
                tally.revoked_after_replay += 1;
            } else {
                tally.fail(Kind::Replay, format!(
                    "{}: after a replay, the session's newest refresh token answered {} (the session should be revoked)",
                    self.email,
                    newest_answer.describe()
                ));
            }
        }
        self.sign_in(world, client).await
    }

    /// Asks for a reset link, follows it from the email with a new password,
    /// then checks what a reset promises: the old session's refresh token is
    /// refused, the old password fails, the new one works. The access token
    /// of the new sign-in.
    async fn reset(&mut self, world: &World, client: &Client) -> anyhow::Result<String> {
        // A link works for the reset lifetime from its request (seconds on
        // the test stack): one that arrives later has expired, as documented;
        // then the customer asks once more.
        let mut asked_for = 0;
        let (link, asked_at) = loop {
            asked_for += 1;
            let asked_at = Instant::now();
            let asked = client
                .send(
                    Req::post("POST /auth/password-reset", "/auth/password-reset").json(&json!({"email": self.email})),
                )
                .await;
            if asked.status != 202 {
                world.surprise("POST /auth/password-reset", &asked);
                let what = format!("{}: a reset request answered {}", self.email, asked.describe());
                world.ledger().lifecycle.fail(Kind::Reset, what);
                return self.sign_in(world, client).await;
            }
            world.ledger().lifecycle.resets_requested += 1;
            let Some(link) = reset_token(world, &self.email, asked_for).await else {
                {
                    let mut ledger = world.ledger();
                    ledger.lifecycle.resets.push((self.email.clone(), false));
                    let what =
                        format!("{}: reset email {asked_for} did not come within {EMAIL_PATIENCE:?}", self.email);
                    ledger.lifecycle.fail(Kind::Reset, what);
                }
                return self.sign_in(world, client).await;
            };
            world.ledger().lifecycle.reset_emails += 1;
            if asked_at.elapsed() + LINK_MARGIN < world.reset_ttl {
                break (link, asked_at);
            }
            {
                let mut ledger = world.ledger();
                ledger.lifecycle.resets_expired += 1;
                ledger.lifecycle.resets.push((self.email.clone(), false));
            }
            if asked_for == 2 {
                return self.sign_in(world, client).await;
            }
        };
        // A session surely alive right before the reset (the test stack's
        // refresh tokens expire in seconds; the email took some): its token
        // must be refused after it because the reset ended it, not because it expired.
        if self.refresh(world, client).await.is_none() {
            self.sign_in(world, client).await?;
        }
        let new_password = format!("{} after a reset", self.password);
        let confirmed = client
            .send(
                Req::post("POST /auth/password-reset/confirm", "/auth/password-reset/confirm")
                    .json(&json!({"token": link, "password": new_password})),
            )
            .await;
        {
            let mut ledger = world.ledger();
            ledger.lifecycle.resets.push((self.email.clone(), confirmed.status == 204));
            let may_have_expired = asked_at.elapsed() + LINK_MARGIN >= world.reset_ttl;
            if confirmed.status == 204 {
                ledger.lifecycle.resets_confirmed += 1;
                ledger.passwords.insert(self.email.clone(), new_password.clone());
            } else if may_have_expired && confirmed.error_code() == "invalid_reset_token" {
                ledger.lifecycle.resets_expired += 1;
            } else {
                let what = format!("{}: following the reset link answered {}", self.email, confirmed.describe());
                ledger.lifecycle.fail(Kind::Reset, what);
            }
        }
        if confirmed.status != 204 {
            return self.sign_in(world, client).await;
        }
        let old_password = std::mem::replace(&mut self.password, new_password);
        if let Some(held) = self.refresh.take() {
            let answer = client
                .send(Req::post("POST /auth/refresh", "/auth/refresh").json(&json!({"refresh_token": held.token})))
                .await;
            let mut ledger = world.ledger();
            if refused(&answer) {
                ledger.lifecycle.old_session_refused += 1;
            } else {
                ledger.lifecycle.fail(
                    Kind::Reset,
                    format!(
                        "{}: the refresh token of a session before the reset answered {}",
                        self.email,
                        answer.describe()
                    ),
                );
            }
        }
        let old = client
            .send(
                Req::post("POST /auth/login", "/auth/login")
                    .json(&json!({"email": self.email, "password": old_password})),
            )
            .await;
        if old.status == 401 {
            world.ledger().lifecycle.old_password_refused += 1;
        } else {
            world.ledger().lifecycle.fail(
                Kind::Reset,
                format!("{}: the old password after a reset answered {}", self.email, old.describe()),
            );
        }
        let access = self.sign_in(world, client).await?;
        world.ledger().lifecycle.new_password_accepted += 1;
        Ok(access)
    }

    /// Logs out with the newest refresh token (204), which then no longer refreshes (401).
    pub async fn log_out(&mut self, world: &World, client: &Client) {
        let Some(held) = self.refresh.take() else { return };
        let body = json!({"refresh_token": held.token});
        let out = client.send(Req::post("POST /auth/logout", "/auth/logout").json(&body)).await;
        let after = client.send(Req::post("POST /auth/refresh", "/auth/refresh").json(&body)).await;
        let mut ledger = world.ledger();
        let tally = &mut ledger.lifecycle;
        tally.logouts += 1;
        if out.status == 204 {
            tally.logouts_ok += 1;
        } else {
            tally.fail(Kind::Logout, format!("{}: logout answered {}", self.email, out.describe()));
        }
        if refused(&after) {
            tally.refused_after_logout += 1;
        } else {
            tally.fail(
                Kind::Logout,
                format!("{}: a logged-out session's refresh token answered {}", self.email, after.describe()),
            );
        }
    }
}

/// One request to each lifecycle route before the clock starts (under
/// `cargo lambda watch` a function's first request also starts its
/// process, which took seconds, past the test stack's token lifetimes): the
/// warm-up user signs in, refreshes and logs out; a reset is asked for an
/// address without an account (202, no email) and a link of no account is
/// followed (400).
pub async fn warm_up(world: &World, client: &Client, email: &str) -> anyhow::Result<()> {
    let mut account = Account::new(email, &world.password_of(email));
    account.sign_in(world, client).await?;
    let held = account.refresh.take().context("signed in without a refresh token")?;
    let body = json!({"refresh_token": held.token});
    let answer = client.send(Req::post("POST /auth/refresh", "/auth/refresh").json(&body)).await;
    if answer.status != 200 {
        bail!("warm-up POST /auth/refresh answered {}", answer.describe());
    }
    let body = json!({"refresh_token": answer.json()["refresh_token"]});
    let answer = client.send(Req::post("POST /auth/logout", "/auth/logout").json(&body)).await;
    if answer.status != 204 {
        bail!("warm-up POST /auth/logout answered {}", answer.describe());
    }
    let nobody = format!("load.{}.nobody@example.com", world.run);
    let answer = client
        .send(Req::post("POST /auth/password-reset", "/auth/password-reset").json(&json!({"email": nobody})))
        .await;
    if answer.status != 202 {
        bail!("warm-up POST /auth/password-reset answered {}", answer.describe());
    }
    let unknown = format!("{}.{}", ulid::Ulid::new(), "A".repeat(43));
    let body = json!({"token": unknown, "password": world.password_of(email)});
    let answer =
        client.send(Req::post("POST /auth/password-reset/confirm", "/auth/password-reset/confirm").json(&body)).await;
    if answer.status != 400 {
        bail!("warm-up POST /auth/password-reset/confirm answered {}", answer.describe());
    }
    Ok(())
}

/// The token of the `nth` (1-based) reset email to `to`, read back from moto's SES.
async fn reset_token(world: &World, to: &str, nth: usize) -> Option<String> {
    let deadline = Instant::now() + EMAIL_PATIENCE;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(response) = world
            .http
            .get(format!("{}/moto-api/data.json", world.moto_endpoint))
            .timeout(Duration::from_secs(30))
            .send()
            .await
        else {
            continue;
        };
        let Ok(data) = response.json::<Value>().await else { continue };
        let token = data["ses"]["Message"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|message| {
                message["destinations"]["ToAddresses"].as_array().is_some_and(|all| all.iter().any(|a| a == to))
            })
            .filter_map(|message| message["body"].as_str()?.split_once("/reset-password#token="))
            .filter_map(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
            .nth(nth - 1);
        if token.is_some() {
            return token;
        }
    }
    None
}

/// The emails the lifecycle caused, per (address, subject): a link per reset
/// requested, a notice per reset done.
pub fn expected_emails(tally: &Tally) -> Vec<((String, String), usize)> {
    let mut expected: std::collections::BTreeMap<(String, String), usize> = std::collections::BTreeMap::new();
    for (to, confirmed) in &tally.resets {
        *expected.entry((to.clone(), "Choose a new password".to_owned())).or_default() += 1;
        if *confirmed {
            *expected.entry((to.clone(), "Your password was changed".to_owned())).or_default() += 1;
        }
    }
    expected.into_iter().collect()
}

/// The lifecycle's verdicts. With lifecycle customers, each kind of step
/// must also have happened: an invariant that checked nothing proves nothing.
pub fn invariants(tally: &Tally) -> Vec<Invariant> {
    let active = tally.customers > 0;
    vec![
        Invariant {
            name: "every refresh answered 200 with a new token, or 401 once the token may have expired",
            passed: tally.refreshes_ok + tally.refreshes_expired == tally.refreshes
                && (!active || tally.refreshes_ok > 0),
            detail: format!(
                "{} lifecycle customers: {} refreshes with the newest token, {} answered 200 with a new refresh token, {} refused after the token's lifetime{}",
                tally.customers,
                tally.refreshes,
                tally.refreshes_ok,
                tally.refreshes_expired,
                tally.examples(Kind::Refresh)
            ),
        },
        Invariant {
            name: "no refresh token accepted twice; a replayed one revokes its session",
            passed: tally.accepted_twice == 0
                && tally.replays_refused == tally.replays
                && tally.revoked_after_replay == tally.replays
                && (!active || tally.replays > 0),
            detail: format!(
                "{} tokens accepted twice; {} rotated tokens presented again: {} refused 401, after which the session's newest token was refused {} times{}",
                tally.accepted_twice,
                tally.replays,
                tally.replays_refused,
                tally.revoked_after_replay,
                tally.examples(Kind::Replay)
            ),
        },
        Invariant {
            name: "a logged-out session's refresh token is refused",
            passed: tally.logouts_ok == tally.logouts
                && tally.refused_after_logout == tally.logouts
                && (!active || tally.logouts > 0),
            detail: format!(
                "{} logouts: {} answered 204, {} refresh tokens refused after them{}",
                tally.logouts,
                tally.logouts_ok,
                tally.refused_after_logout,
                tally.examples(Kind::Logout)
            ),
        },
        Invariant {
            name: "after a password reset the old password and sessions fail and the new password works",
            passed: tally.reset_emails == tally.resets_requested
                && tally.resets_confirmed + tally.resets_expired == tally.resets_requested
                && tally.old_session_refused == tally.resets_confirmed
                && tally.old_password_refused == tally.resets_confirmed
                && tally.new_password_accepted == tally.resets_confirmed
                && (!active || tally.resets_confirmed > 0),
            detail: format!(
                "{} resets asked (202), {} links read from the email, {} set a new password (204), {} expired first (asked again); then the old session's refresh token refused {}, the old password refused {}, the new password accepted {}{}",
                tally.resets_requested,
                tally.reset_emails,
                tally.resets_confirmed,
                tally.resets_expired,
                tally.old_session_refused,
                tally.old_password_refused,
                tally.new_password_accepted,
                tally.examples(Kind::Reset)
            ),
        },
    ]
}
