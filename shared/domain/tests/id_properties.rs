//! Property tests of id parsing (`UserId`, `ProductId`, `OrderId`): ids round-trip
//! through text, and any text either parses to an id that writes it back
//! exactly (the one canonical spelling) or is refused with the field's error.
//! `cargo xtask fuzz-parsers --cases N` runs them with N cases each.

use domain::{OrderId, ProductId, UserId, ValidationError};
use proptest::prelude::*;

/// `PROPTEST_CASES` if set (the long run of `cargo xtask fuzz-parsers`), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Crockford's base 32, as ULIDs are written: no I, L, O or U.
const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The canonical spelling of a ULID: 26 upper-case Crockford characters,
/// the first at most 7 (128 bits).
fn canonical() -> impl Strategy<Value = String> {
    "[0-7][0-9A-HJKMNP-TV-Z]{25}"
}

/// Is `text` a canonical ULID? Written from the format, not from the parser.
fn is_canonical(text: &str) -> bool {
    text.len() == 26
        && text.starts_with(|c: char| ('0'..='7').contains(&c))
        && text.chars().all(|c| CROCKFORD.contains(c))
}

/// Text near the format: canonical ids with one character changed (lower
/// case, Crockford's aliases I, L, O, U, overflow in the first, anything),
/// one added or removed, surrounding space; and any text at all.
fn near_miss() -> impl Strategy<Value = String> {
    let edit = (
        any::<usize>(),
        prop_oneof![Just('i'), Just('I'), Just('L'), Just('O'), Just('U'), Just('8'), Just('Z'), any::<char>()],
    );
    prop_oneof![
        canonical().prop_map(|id| id.to_lowercase()),
        (canonical(), edit.clone()).prop_map(|(id, (at, c))| {
            let mut chars: Vec<char> = id.chars().collect();
            chars[at % 26] = c;
            chars.into_iter().collect()
        }),
        (canonical(), edit).prop_map(|(id, (at, c))| {
            let mut chars: Vec<char> = id.chars().collect();
            chars.insert(at % 27, c);
            chars.into_iter().collect()
        }),
        (canonical(), any::<usize>()).prop_map(|(id, at)| {
            let mut chars: Vec<char> = id.chars().collect();
            chars.remove(at % 26);
            chars.into_iter().collect()
        }),
        canonical().prop_map(|id| format!(" {id}")),
        canonical().prop_map(|id| format!("{id}\n")),
        "[0-9A-Za-z]{0,40}",
        any::<String>(),
    ]
}

/// What each id type's parser must do with `text`: accept exactly the
/// canonical spellings and write them back unchanged, refuse the rest naming
/// the field.
fn check<T: std::fmt::Display + std::fmt::Debug>(
    text: &str,
    parsed: Result<T, ValidationError>,
    field: &str,
) -> Result<(), TestCaseError> {
    match parsed {
        Ok(id) => {
            prop_assert!(is_canonical(text), "accepted {:?} as {:?}", text, id);
            prop_assert_eq!(id.to_string(), text);
        }
        Err(error) => {
            prop_assert!(!is_canonical(text), "refused the canonical {:?}: {}", text, error);
            prop_assert_eq!(error.fields().len(), 1);
            prop_assert_eq!(&error.fields()[0].field, field);
            prop_assert_eq!(&error.fields()[0].message, "is not a valid id");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1024), ..ProptestConfig::default() })]

    #[test]
    fn canonical_ids_round_trip(text in canonical()) {
        let user = UserId::parse(&text).unwrap();
        prop_assert_eq!(user.to_string(), text.as_str());
        prop_assert_eq!(UserId::parse(&user.to_string()).unwrap(), user);
        prop_assert_eq!(ProductId::parse(&text).unwrap().to_string(), text.as_str());
        prop_assert_eq!(OrderId::parse(&text).unwrap().to_string(), text.as_str());
    }

    #[test]
    fn any_text_parses_to_its_canonical_id_or_is_refused(text in near_miss()) {
        check(&text, UserId::parse(&text), "id")?;
        check(&text, ProductId::parse(&text), "product_id")?;
        check(&text, OrderId::parse(&text), "order_id")?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn generated_ids_round_trip(_round in 0_u8..1) {
        let (user, product, order) = (UserId::generate(), ProductId::generate(), OrderId::generate());
        prop_assert!(is_canonical(&user.to_string()));
        prop_assert_eq!(UserId::parse(&user.to_string()).unwrap(), user);
        prop_assert_eq!(ProductId::parse(&product.to_string()).unwrap(), product);
        prop_assert_eq!(OrderId::parse(&order.to_string()).unwrap(), order);
    }
}
