//! Queues, dead-letter queues, mail and message claims.

use std::time::Duration;

use async_trait::async_trait;
use domain::DomainEvent;
use domain::ports::{MailError, Mailer, Publisher, Unreachable};
use framework::batch::{Claim, DeadLetters, MessageClaims, Unavailable};

use crate::{Dependency, Memory};

/// How long a finished key is remembered (as in the DynamoDB adapter).
const REMEMBER: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Sends events: committed ones leave the outbox when their queue is up
/// (otherwise the relay sends them later, see [`Memory::relay`]).
#[derive(Clone)]
pub struct MemoryPublisher {
    memory: Memory,
}

impl MemoryPublisher {
    pub(crate) fn new(memory: Memory) -> Self {
        Self { memory }
    }
}

#[async_trait]
impl Publisher for MemoryPublisher {
    async fn publish_after_commit(&self, event: &DomainEvent) {
        let mut state = self.memory.lock();
        if state.down.contains(&Dependency::Queues) {
            return;
        }
        if let Some(index) = state.outbox.iter().position(|pending| pending.id == event.id) {
            let sent = state.outbox.remove(index);
            state.published.push(sent);
        }
    }

    async fn publish(&self, event: &DomainEvent) -> Result<(), Unreachable> {
        let mut state = self.memory.lock();
        if state.down.contains(&Dependency::Queues) {
            return Err(Unreachable("the queues are down".into()));
        }
        state.published.push(event.clone());
        Ok(())
    }
}

/// Parks messages while the queues are up; `Unreachable` while they are down.
#[derive(Clone)]
pub struct MemoryDeadLetters {
    memory: Memory,
}

impl MemoryDeadLetters {
    pub(crate) fn new(memory: Memory) -> Self {
        Self { memory }
    }
}

#[async_trait]
impl DeadLetters for MemoryDeadLetters {
    async fn park(&self, body: &str, reason: &str, _source_message_id: &str) -> Result<(), Unavailable> {
        let mut state = self.memory.lock();
        if state.down.contains(&Dependency::Queues) {
            return Err(Unreachable("the queues are down".into()).into());
        }
        state.parked.push((body.to_owned(), reason.to_owned()));
        Ok(())
    }
}

/// An email as the mail service accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// Accepts every email unless the mail service is down (`Unavailable`) or the
/// recipient is refused (`Rejected`, see [`Memory::refuse_recipient`]).
#[derive(Clone)]
pub struct MemoryMailer {
    memory: Memory,
}

impl MemoryMailer {
    pub(crate) fn new(memory: Memory) -> Self {
        Self { memory }
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        let mut state = self.memory.lock();
        if state.down.contains(&Dependency::Mail) {
            return Err(MailError::Unavailable("the mail service is down".into()));
        }
        if state.refused_recipients.contains(to) {
            return Err(MailError::Rejected(format!("{to} refused")));
        }
        state.sent_emails.push(SentEmail { to: to.to_owned(), subject: subject.to_owned(), body: body.to_owned() });
        Ok(())
    }
}

/// Message claims; an expired claim counts as absent.
#[derive(Clone)]
pub struct MemoryMessageClaims {
    memory: Memory,
    duration: Duration,
}

impl MemoryMessageClaims {
    pub(crate) fn new(memory: Memory, duration: Duration) -> Self {
        Self { memory, duration }
    }
}

#[async_trait]
impl MessageClaims for MemoryMessageClaims {
    async fn claim(&self, key: &str) -> Result<Claim, Unavailable> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let now = state.now();
        match state.claims.get(key) {
            Some((true, until)) if *until >= now => Ok(Claim::Done),
            Some((false, until)) if *until >= now => Ok(Claim::InProgress),
            _ => {
                state.claims.insert(key.to_owned(), (false, now + self.duration));
                Ok(Claim::Acquired)
            }
        }
    }

    async fn complete(&self, key: &str) -> Result<(), Unavailable> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        let until = state.now() + REMEMBER;
        state.claims.insert(key.to_owned(), (true, until));
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), Unavailable> {
        let mut state = self.memory.lock();
        state.check(Dependency::Table)?;
        if state.claims.get(key).is_some_and(|(done, _)| !done) {
            state.claims.remove(key);
        }
        Ok(())
    }
}
