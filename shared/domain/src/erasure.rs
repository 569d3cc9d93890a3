//! Erasing an account on its owner's request: what may refuse it, and how
//! the store reports it.
//!
//! An erasure removes the account and everything stored under it (its
//! email claim, so the address can register again, its credentials,
//! sessions and pending tokens) in one atomic write, and records it as
//! unfinished; the account's orders stay in the shop's books with their
//! owner removed ([`crate::Order::without_owner`]), in steps that a repeat
//! or the scheduled sweep finishes.

use crate::ports::StoreError;

/// Why an account cannot be erased now, though its owner asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ErasureRefused {
    /// The account is an admin's. Admins are never erased: another admin
    /// first makes it a plain account, and that change is witnessed by an
    /// admin who stays (`UserStore::update`), so the shop never loses its
    /// last admin, however many erasures run at once.
    #[error(
        "an administrator's account cannot be deleted; another administrator must first make it a customer account"
    )]
    Admin,
    /// The account has orders still open (pending or confirmed), which the
    /// shop still has to serve or release: cancel them, or wait until they
    /// are shipped.
    #[error("the account has open orders; cancel them or wait until they are shipped, then delete the account")]
    OpenOrders,
}

/// Why an erasure did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    /// A rule refused it; nothing was written.
    #[error(transparent)]
    Refused(ErasureRefused),
    /// The store failed, or the account is gone (`NotFound`) or changed
    /// since it was read (`VersionMismatch`); nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
}
