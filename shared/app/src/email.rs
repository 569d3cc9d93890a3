//! The emails the shop sends, rendered from their task.

use domain::EmailTask;

/// Subject and plain-text body of `task`.
pub fn render(task: &EmailTask) -> (String, String) {
    match task {
        EmailTask::Welcome { .. } => (
            "Welcome to the shop".to_owned(),
            "Hello,\n\nyour account is ready. Happy shopping!\n\nThe shop".to_owned(),
        ),
        EmailTask::OrderConfirmed { order_id, total, .. } => (
            format!("Order {order_id} confirmed"),
            format!(
                "Hello,\n\nyour order {order_id} is confirmed. Total: {total}.\nWe will let you know when it ships.\n\nThe shop"
            ),
        ),
        EmailTask::OrderRejected { order_id, reason, .. } => (
            format!("Order {order_id} could not be accepted"),
            format!(
                "Hello,\n\nwe are sorry: your order {order_id} could not be accepted ({reason}). You have not been charged.\n\nThe shop"
            ),
        ),
        EmailTask::OrderExpired { order_id, reason, .. } => (
            format!("Order {order_id} expired"),
            format!(
                "Hello,\n\nyour order {order_id} was cancelled ({reason}); the items it reserved are back on sale. You have not been charged.\n\nThe shop"
            ),
        ),
        EmailTask::VerifyEmail { link, .. } => (
            "Confirm your email address".to_owned(),
            format!(
                "Hello,\n\nto finish creating your account, confirm this is your address by opening this link:\n\n{link}\n\nThe link works once, for a limited time. If you did not ask for an account, ignore this email: nothing happens without the link.\n\nThe shop"
            ),
        ),
        EmailTask::PasswordReset { link, .. } => (
            "Choose a new password".to_owned(),
            format!(
                "Hello,\n\nto choose a new password for your shop account, open this link:\n\n{link}\n\nThe link works once, for 30 minutes, and only until you ask for another. If you did not ask, ignore this email: your password stays as it is.\n\nThe shop"
            ),
        ),
        EmailTask::PasswordChanged { .. } => (
            "Your password was changed".to_owned(),
            "Hello,\n\nthe password of your shop account was just changed with a reset link, and every device was signed out.\nIf this was not you, ask for a new reset link at once and change your email account's password too.\n\nThe shop".to_owned(),
        ),
        EmailTask::AccountExists { .. } => (
            "Someone tried to register with your address".to_owned(),
            "Hello,\n\nsomeone (perhaps you) just tried to create a shop account with this address, which already has one. Nothing was changed.\nIf it was you, sign in instead, or reset your password if you forgot it. If it was not, you need not do anything.\n\nThe shop".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_emails_name_the_order_and_its_outcome() {
        let rejected = EmailTask::OrderRejected {
            to: "a@example.com".into(),
            dedupe_key: "k".into(),
            order_id: "01ABC".into(),
            reason: "not enough stock for MUG-1".into(),
        };
        let (subject, body) = render(&rejected);
        assert!(subject.contains("01ABC"));
        assert!(body.contains("not enough stock for MUG-1"));
        let confirmed = EmailTask::OrderConfirmed {
            to: "a@example.com".into(),
            dedupe_key: "k".into(),
            order_id: "01ABC".into(),
            total: "19.99 EUR".into(),
        };
        assert!(render(&confirmed).1.contains("19.99 EUR"));
        let expired = EmailTask::OrderExpired {
            to: "a@example.com".into(),
            dedupe_key: "k".into(),
            order_id: "01ABC".into(),
            reason: "expired: not shipped within 48 hours of being placed".into(),
        };
        let (subject, body) = render(&expired);
        assert_eq!(subject, "Order 01ABC expired");
        assert!(body.contains("within 48 hours"), "{body}");
    }

    #[test]
    fn verification_emails_carry_their_link_and_the_notice_none() {
        let link = "https://shop.example.com/verify-email#token=01ABC.secret".to_owned();
        let verify = EmailTask::VerifyEmail { to: "a@example.com".into(), dedupe_key: "k".into(), link: link.clone() };
        let (subject, body) = render(&verify);
        assert_eq!(subject, "Confirm your email address");
        assert!(body.contains(&link), "{body}");
        let exists = EmailTask::AccountExists { to: "a@example.com".into(), dedupe_key: "k".into() };
        let (subject, body) = render(&exists);
        assert!(subject.contains("tried to register"), "{subject}");
        assert!(!body.contains("token"), "the notice carries no link that changes anything");
        let wire = r#"{"to":"a@example.com","template":"verify-email","dedupe_key":"k","link":"x"}"#;
        assert_eq!(serde_json::from_str::<EmailTask>(wire).unwrap().template(), "verify-email");
    }

    #[test]
    fn tasks_keep_their_wire_format() {
        let welcome: EmailTask =
            serde_json::from_str(r#"{"to":"a@example.com","template":"welcome","dedupe_key":"welcome#1"}"#).unwrap();
        assert_eq!(welcome.template(), "welcome");
        let extra = r#"{"to":"a@example.com","template":"welcome","dedupe_key":"k","total":"1.00 EUR"}"#;
        assert!(serde_json::from_str::<EmailTask>(extra).is_err(), "a welcome email shows no total");
        let missing = r#"{"to":"a@example.com","template":"order-confirmed","dedupe_key":"k","order_id":"01ABC"}"#;
        assert!(serde_json::from_str::<EmailTask>(missing).is_err(), "a confirmation shows its total");
    }
}
