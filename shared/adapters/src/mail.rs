//! Email through SES v2.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use domain::ports::{MailError, Mailer};

/// Sends plain-text email with SES v2 (`ses:SendEmail`). SES refusing the
/// message or the request is `Rejected`; anything else may pass on a retry.
#[derive(Clone, Debug)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    sender: String,
}

impl SesMailer {
    /// Sends from `sender`, which must be an identity SES has verified.
    pub fn new(client: aws_sdk_sesv2::Client, sender: String) -> Self {
        Self { client, sender }
    }
}

fn content(text: &str) -> Result<Content, MailError> {
    Content::builder().data(text).charset("UTF-8").build().map_err(|e| MailError::Rejected(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        let message =
            Message::builder().subject(content(subject)?).body(Body::builder().text(content(body)?).build()).build();
        let result = self
            .client
            .send_email()
            .from_email_address(&self.sender)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                use aws_sdk_sesv2::error::SdkError;
                let described = aws_sdk_sesv2::error::DisplayErrorContext(&error).to_string();
                match &error {
                    SdkError::ServiceError(service)
                        if service.err().is_message_rejected() || service.err().is_bad_request_exception() =>
                    {
                        Err(MailError::Rejected(described))
                    }
                    _ => Err(MailError::Unavailable(described.into())),
                }
            }
        }
    }
}
