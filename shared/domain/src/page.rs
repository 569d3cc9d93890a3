//! Paging: how many items a client may ask for, and the shape of one page.

use crate::ValidationError;

/// How many items a client may ask for in one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u16);

impl PageLimit {
    /// The limit when the client gives none.
    pub const DEFAULT: PageLimit = PageLimit(20);
    /// The largest limit a client may ask for.
    pub const MAX: u16 = 100;

    /// The `limit` query parameter: absent means [`PageLimit::DEFAULT`],
    /// otherwise a whole number from 1 to [`PageLimit::MAX`].
    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        let Some(raw) = raw else { return Ok(Self::DEFAULT) };
        match raw.parse::<u16>() {
            Ok(limit) if (1..=Self::MAX).contains(&limit) => Ok(Self(limit)),
            _ => Err(ValidationError::field("limit", "must be a whole number from 1 to 100")),
        }
    }

    /// The number of items, always within 1..=[`PageLimit::MAX`].
    pub fn get(self) -> u16 {
        self.0
    }
}

/// A request for one page. `after` is the store's own position marker,
/// decoded from a verified cursor; the domain never looks inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The most items the page may hold.
    pub limit: PageLimit,
    /// Where the previous page ended; `None` for the first page.
    pub after: Option<String>,
}

/// One page of results, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// At most the requested limit of items.
    pub items: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next: Option<String>,
    /// How many items exist in all pages.
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(PageLimit::parse(None).unwrap(), PageLimit::DEFAULT);
        assert_eq!(PageLimit::parse(Some("100")).unwrap().get(), 100);
        for bad in ["0", "101", "-1", "ten", "", "1.5"] {
            assert!(PageLimit::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
