//! Typed identifiers, so a user id can never be passed where an order id is
//! expected.

use std::fmt;
use std::str::FromStr;

use ulid::Ulid;

use crate::ValidationError;

/// Identifiers are ULIDs: unique without coordination, and sortable by
/// creation time, which gives newest-first listings for free.
macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            /// A fresh id, stamped with the current millisecond so it sorts
            /// after ids made earlier.
            pub fn generate() -> Self {
                Self(Ulid::new())
            }

            /// Accepts only the canonical form (26 upper-case Crockford
            /// characters), so one id has exactly one spelling in keys and URLs.
            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                match Ulid::from_str(raw) {
                    Ok(ulid) if ulid.to_string() == raw => Ok(Self(ulid)),
                    _ => Err(ValidationError::field($field, "is not a valid id")),
                }
            }

            /// The id whose ULID is `ulid` (a token's subject, say).
            pub fn from_ulid(ulid: Ulid) -> Self {
                Self(ulid)
            }

            /// Its ULID.
            pub fn ulid(self) -> Ulid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0)
            }
        }
    };
}

ulid_id!(
    /// An account's id: the `{id}` of `/users/{id}` and the subject of its tokens.
    UserId,
    "id"
);
ulid_id!(
    /// A catalogue entry's id; order lines keep it after the product is deleted.
    ProductId,
    "product_id"
);
ulid_id!(
    /// An order's id; also names the order in its emails.
    OrderId,
    "order_id"
);
ulid_id!(
    /// A session's id: one family of rotating refresh tokens, from a sign-in
    /// to its logout, expiry or revocation.
    SessionId,
    "session_id"
);

impl OrderId {
    /// The smallest id an order placed at `moment` can have: every order
    /// placed before it has a smaller id (ids sort by their millisecond).
    pub fn first_at(moment: time::OffsetDateTime) -> Self {
        let millis = u64::try_from(moment.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        Self(Ulid::from_parts(millis, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn rejects_non_ulids() {
        for bad in [
            "",
            "123",
            "not-an-id",
            "01ARZ3NDEKTSV4RRFFQ69G5FA!",
            "ZZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "01arz3ndektsv4rrffq69g5fav",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_made_before_a_moment_sort_below_its_first_id() {
        let earlier = OrderId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let bound = OrderId::first_at(time::OffsetDateTime::now_utc());
        assert!(earlier.to_string() < bound.to_string());
        assert!(bound.to_string() <= OrderId::generate().to_string());
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let first = UserId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = UserId::generate();
        assert!(second.to_string() > first.to_string());
    }
}
