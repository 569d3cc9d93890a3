//! refresh-session in the bench. A refresh token works once (each refresh
//! rotates it), so replaying the sample event would measure 401s. The bench
//! seeds one session for the seeded customer and chains it: every request
//! carries the refresh token the answer before it handed out, across every
//! cold start, so the cold request and each warm one do the whole work of a
//! successful refresh (read the account, rotate the session with its
//! condition, sign an access token). Any answer but a 200 with a new refresh
//! token of the same session stops the bench.

use anyhow::{Context, bail};
use domain::RefreshToken;
use serde_json::Value;

use super::emulator::Events;

/// The function this chain drives.
pub const FUNCTION: &str = "refresh-session";

/// The refresh-session sample event, each time with the session's newest refresh token.
pub struct RefreshChain {
    event: Value,
    token: RefreshToken,
    /// Refreshes answered 200 with a new token of the same session.
    refreshed: usize,
}

impl RefreshChain {
    /// `event` (the sample, an API Gateway event) carrying `first`, a
    /// refresh token no request has used yet.
    pub fn new(event: &[u8], first: &str) -> anyhow::Result<Self> {
        let event: Value = serde_json::from_slice(event).context("the refresh-session event is not JSON")?;
        let token = RefreshToken::parse(first).map_err(|e| anyhow::anyhow!("the seeded refresh token: {e}"))?;
        Ok(Self { event, token, refreshed: 0 })
    }

    /// How many refreshes answered 200 with the session's next token.
    pub fn refreshed(&self) -> usize {
        self.refreshed
    }
}

impl Events for RefreshChain {
    fn next(&mut self, _key: &str) -> anyhow::Result<Vec<u8>> {
        let mut event = self.event.clone();
        event["body"] = serde_json::json!({ "refresh_token": self.token.to_text() }).to_string().into();
        Ok(serde_json::to_vec(&event)?)
    }

    fn answered(&mut self, response: &[u8]) -> anyhow::Result<()> {
        let response: Value = serde_json::from_slice(response).context("the answer is not JSON")?;
        let body: Value =
            response["body"].as_str().and_then(|body| serde_json::from_str(body).ok()).unwrap_or_default();
        let status = response["statusCode"].as_u64().unwrap_or_default();
        if status != 200 {
            bail!(
                "refresh-session answered {status} {} after {} refreshes: the chain of refresh tokens broke, \
                 and a refused refresh does not do a refresh's work",
                body["error"]["code"].as_str().unwrap_or_default(),
                self.refreshed
            );
        }
        if body["token"].as_str().is_none_or(str::is_empty) {
            bail!("refresh-session answered 200 without an access token");
        }
        let text = body["refresh_token"].as_str().context("refresh-session answered 200 without a refresh token")?;
        let next = RefreshToken::parse(text).map_err(|e| anyhow::anyhow!("the new refresh token: {e}"))?;
        if next.user_id != self.token.user_id || next.session_id != self.token.session_id {
            bail!("refresh-session handed out a token of another session");
        }
        if next == self.token {
            bail!("refresh-session handed back the token it was given: it did not rotate");
        }
        self.token = next;
        self.refreshed += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const USER: &str = "01J9Z3NDEKTSV4RRFFQ69G5FAV";
    const SESSION: &str = "01J9Z3NDEKTSV4RRFFQ69G5FAW";

    fn token(fill: char) -> String {
        format!("{USER}.{SESSION}.{}", fill.to_string().repeat(43))
    }

    fn sample() -> Vec<u8> {
        json!({"httpMethod": "POST", "path": "/api/v1/auth/refresh", "body": "{}"}).to_string().into_bytes()
    }

    fn answer(status: u16, body: &Value) -> Vec<u8> {
        json!({"statusCode": status, "body": body.to_string()}).to_string().into_bytes()
    }

    fn presented(chain: &mut RefreshChain) -> String {
        let event: Value = serde_json::from_slice(&chain.next("key").unwrap()).unwrap();
        let body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
        body["refresh_token"].as_str().unwrap().to_owned()
    }

    #[test]
    fn each_request_carries_the_token_the_answer_before_it_handed_out() {
        let mut chain = RefreshChain::new(&sample(), &token('A')).unwrap();
        assert_eq!(presented(&mut chain), token('A'));
        chain.answered(&answer(200, &json!({"token": "jwt", "refresh_token": token('B')}))).unwrap();
        assert_eq!(presented(&mut chain), token('B'));
        chain.answered(&answer(200, &json!({"token": "jwt", "refresh_token": token('C')}))).unwrap();
        assert_eq!(presented(&mut chain), token('C'));
        assert_eq!(chain.refreshed(), 2);
    }

    #[test]
    fn a_refused_or_unrotated_refresh_stops_the_chain() {
        let mut chain = RefreshChain::new(&sample(), &token('A')).unwrap();
        let refused = chain.answered(&answer(401, &json!({"error": {"code": "invalid_token"}}))).unwrap_err();
        assert!(refused.to_string().contains("401 invalid_token"), "{refused}");
        let same = chain.answered(&answer(200, &json!({"token": "jwt", "refresh_token": token('A')}))).unwrap_err();
        assert!(same.to_string().contains("did not rotate"), "{same}");
        let other = format!("{USER}.01J9Z3NDEKTSV4RRFFQ69G5FAX.{}", "B".repeat(43));
        let moved = chain.answered(&answer(200, &json!({"token": "jwt", "refresh_token": other}))).unwrap_err();
        assert!(moved.to_string().contains("another session"), "{moved}");
        let no_access = chain.answered(&answer(200, &json!({"refresh_token": token('B')}))).unwrap_err();
        assert!(no_access.to_string().contains("without an access token"), "{no_access}");
        assert_eq!(chain.refreshed(), 0);
        assert_eq!(presented(&mut chain), token('A'), "a refused answer does not move the chain");
    }
}
