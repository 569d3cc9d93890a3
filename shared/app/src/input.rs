//! How request bodies spell what the handlers parse.

use serde::{Deserialize, Deserializer};

/// A whole number in any spelling JSON has for it: `2`, `2.0`, `2e0`. JSON
/// does not tell them apart, nor does JSON Schema's `integer` (which the
/// API's document promises), and clients that hold numbers as floats send
/// `2.0`. A fraction, or a number beyond `i64`, is still refused (422).
pub(crate) fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(whole) = number.as_i64() {
        return Ok(whole);
    }
    let refused = || serde::de::Error::custom(format!("invalid number {number}, expected a whole number"));
    match number.as_f64() {
        // i64::MAX as f64 rounds up to 2^63, which is out of range: hence the strict upper bound.
        Some(float) if float.fract() == 0.0 && float >= i64::MIN as f64 && float < i64::MAX as f64 => Ok(float as i64),
        _ => Err(refused()),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Quantity {
        #[serde(deserialize_with = "super::whole_number")]
        value: i64,
    }

    fn parse(json: &str) -> Result<i64, String> {
        serde_json::from_str::<Quantity>(&format!(r#"{{"value": {json}}}"#)).map(|q| q.value).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_in_every_json_spelling() {
        for (json, value) in
            [("2", 2), ("2.0", 2), ("2e0", 2), ("1e3", 1000), ("-0.0", 0), ("-7", -7), ("2129.0", 2129)]
        {
            assert_eq!(parse(json), Ok(value), "{json}");
        }
        assert_eq!(parse("10000000000.0"), Ok(10_000_000_000));
    }

    #[test]
    fn fractions_and_out_of_range_numbers_are_refused() {
        for json in ["1.5", "0.1", "1e-3", "1e19", "18446744073709551615", "-1e300", "\"2\"", "true", "null"] {
            assert!(parse(json).is_err(), "{json}");
        }
    }

    #[test]
    fn the_refusal_is_a_data_error_so_the_api_answers_422() {
        let error = serde_json::from_str::<Quantity>(r#"{"value": 1.5}"#).unwrap_err();
        assert_eq!(error.classify(), serde_json::error::Category::Data);
    }
}
