//! The emails the shop sends, rendered from their task.

use domain::{EmailTask, EmailTemplate};

/// Subject and plain-text body of `task`.
pub fn render(task: &EmailTask) -> (String, String) {
    let order = task.order_id.as_deref().unwrap_or("(unknown)");
    match task.template {
        EmailTemplate::Welcome => (
            "Welcome to the shop".to_owned(),
            "Hello,\n\nyour account is ready. Happy shopping!\n\nThe shop".to_owned(),
        ),
        EmailTemplate::OrderConfirmed => (
            format!("Order {order} confirmed"),
            format!(
                "Hello,\n\nyour order {order} is confirmed. Total: {}.\nWe will let you know when it ships.\n\nThe shop",
                task.total.as_deref().unwrap_or("-")
            ),
        ),
        EmailTemplate::OrderRejected => (
            format!("Order {order} could not be accepted"),
            format!(
                "Hello,\n\nwe are sorry: your order {order} could not be accepted ({}). You have not been charged.\n\nThe shop",
                task.reason.as_deref().unwrap_or("no reason given")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_emails_name_the_order_and_its_outcome() {
        let task = EmailTask {
            to: "a@example.com".into(),
            template: EmailTemplate::OrderRejected,
            dedupe_key: "k".into(),
            order_id: Some("01ABC".into()),
            total: None,
            reason: Some("not enough stock for MUG-1".into()),
        };
        let (subject, body) = render(&task);
        assert!(subject.contains("01ABC"));
        assert!(body.contains("not enough stock for MUG-1"));
        let confirmed = EmailTask { template: EmailTemplate::OrderConfirmed, total: Some("19.99 EUR".into()), ..task };
        assert!(render(&confirmed).1.contains("19.99 EUR"));
    }
}
