//! Money: integer amounts in minor units of one currency, with arithmetic
//! that refuses to overflow or to mix currencies.

use std::fmt;

use crate::ValidationError;

/// An ISO 4217 currency code: three upper-case letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Accepts three ASCII letters in any case (trimmed); stores them upper-case.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let upper = raw.trim().to_ascii_uppercase();
        match upper.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|ch| ch.is_ascii_uppercase()) => Ok(Self([*a, *b, *c])),
            _ => Err(ValidationError::field("currency", "must be a three-letter ISO 4217 code such as EUR")),
        }
    }

    /// The code, e.g. `EUR`.
    /// How many digits its minor unit has (ISO 4217): 0 for the yen, 3 for
    /// the dinars of Bahrain, Kuwait and others, 2 for most currencies.
    pub fn minor_digits(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND"
            | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }

    /// The code, upper-case (`EUR`).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("always ASCII letters")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount in minor units (cents) of one currency. Never negative, never
/// a float, never mixed across currencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    minor: u64,
    currency: Currency,
}

/// Largest price accepted: 100 million major units keeps every order total
/// far from overflow.
pub const MAX_MINOR: u64 = 10_000_000_000;

impl Money {
    /// `minor` units of `currency`; refused (as field `price`) beyond [`MAX_MINOR`].
    pub fn new(minor: u64, currency: Currency) -> Result<Self, ValidationError> {
        if minor > MAX_MINOR {
            return Err(ValidationError::field("price", "is too large"));
        }
        Ok(Self { minor, currency })
    }

    /// Nothing, in `currency`: the start of a sum.
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// The amount in minor units (cents for EUR), at most [`MAX_MINOR`].
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The currency the amount is in.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// `self * quantity`; `None` beyond [`MAX_MINOR`]. Arithmetic holds to the
    /// same bound as `new`, so every amount it makes can be read back.
    pub fn times(&self, quantity: u32) -> Option<Money> {
        self.minor.checked_mul(u64::from(quantity)).and_then(|minor| Money::new(minor, self.currency).ok())
    }

    /// `self + other`; `None` if the currencies differ or beyond [`MAX_MINOR`].
    pub fn plus(&self, other: &Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        self.minor.checked_add(other.minor).and_then(|minor| Money::new(minor, self.currency).ok())
    }
}

/// For reading: `19.99 EUR`, `1500 JPY`, `1.250 KWD`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits();
        let unit = 10_u64.pow(digits);
        match digits {
            0 => write!(f, "{} {}", self.minor, self.currency),
            _ => write!(
                f,
                "{}.{:0width$} {}",
                self.minor / unit,
                self.minor % unit,
                self.currency,
                width = digits as usize
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("eur").unwrap()
    }

    #[test]
    fn currencies_are_three_letters() {
        assert_eq!(eur().as_str(), "EUR");
        for bad in ["", "EU", "EURO", "E1R", "€€€"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_is_checked_and_single_currency() {
        let price = Money::new(1999, eur()).unwrap();
        assert_eq!(price.times(3).unwrap().minor(), 5997);
        assert_eq!(price.plus(&price).unwrap().minor(), 3998);
        let usd = Money::new(1, Currency::parse("USD").unwrap()).unwrap();
        assert_eq!(price.plus(&usd), None);
        assert!(Money::new(MAX_MINOR + 1, eur()).is_err());
        let big = Money { minor: u64::MAX / 2, currency: eur() };
        assert_eq!(big.times(3), None);
    }

    #[test]
    fn displays_in_the_currencys_own_minor_unit() {
        let amount = |minor, code| Money::new(minor, Currency::parse(code).unwrap()).unwrap().to_string();
        assert_eq!(amount(3998, "EUR"), "39.98 EUR");
        assert_eq!(amount(5, "usd"), "0.05 USD");
        assert_eq!(amount(1500, "JPY"), "1500 JPY");
        assert_eq!(amount(1250, "KWD"), "1.250 KWD");
    }

    #[test]
    fn arithmetic_never_leaves_the_bound_that_new_enforces() {
        let max = Money::new(MAX_MINOR, eur()).unwrap();
        assert_eq!(max.times(1), Some(max));
        assert_eq!(max.times(2), None);
        assert_eq!(max.plus(&Money::new(1, eur()).unwrap()), None);
        assert_eq!(Money::new(MAX_MINOR / 1000 + 1, eur()).unwrap().times(1000), None);
    }
}
