use crate::ValidationError;

/// How many items a client may ask for in one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u16);

impl PageLimit {
    pub const DEFAULT: PageLimit = PageLimit(20);
    pub const MAX: u16 = 100;

    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        let Some(raw) = raw else { return Ok(Self::DEFAULT) };
        match raw.parse::<u16>() {
            Ok(limit) if (1..=Self::MAX).contains(&limit) => Ok(Self(limit)),
            _ => Err(ValidationError::field("limit", "must be a whole number from 1 to 100")),
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// A request for one page. `after` is the store's own position marker,
/// decoded from a verified cursor; the domain never looks inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: PageLimit,
    pub after: Option<String>,
}

/// One page of results, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
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
