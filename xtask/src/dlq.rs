//! `cargo xtask dlq`: look into and redrive the dead-letter queues.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use local_cloud::local_dir;

use crate::shell::read_env_file;

/// Dead-letter queues of the dev stack, or of the queues an env file names.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    /// Queue URLs (`<NAME>_QUEUE_URL`, `<NAME>_DLQ_URL`) from this file
    /// instead of the running dev stack's.
    #[arg(long, global = true)]
    pub env_file: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Each dead-letter queue's depth and its messages' reasons.
    List,
    /// Moves a queue's dead letters back to the queue.
    Redrive {
        /// A queue of template.yaml, such as `order-placed`.
        queue: String,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let env_file = args.env_file.unwrap_or_else(|| local_dir().join("dev/cloud.env"));
    let env: BTreeMap<String, String> = read_env_file(&env_file)
        .context("no queue settings: is `cargo xtask dev` running, or pass --env-file")?
        .into_iter()
        .collect();
    let mut config = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = env.get("AWS_ENDPOINT_URL_SQS") {
        config = config
            .endpoint_url(endpoint)
            .region(aws_config::Region::new(local_cloud::cloud::REGION))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "local-cloud"));
    }
    let sqs = aws_sdk_sqs::Client::new(&config.load().await);
    let queues = queue_names()?;
    let url = |queue: &str, suffix: &str| {
        let name = queue.to_uppercase().replace('-', "_");
        env.get(&format!("{name}_{suffix}")).cloned().with_context(|| format!("{name}_{suffix} is not set"))
    };
    match args.action {
        Action::List => {
            for queue in &queues {
                let messages = local_cloud::dlq::peek(&sqs, &url(queue, "DLQ_URL")?).await?;
                println!("{queue}: {} dead letter(s)", messages.len());
                for message in messages {
                    println!(
                        "  {}  reason: {}",
                        message.id,
                        message.reason.as_deref().unwrap_or("(redriven after repeated failures)")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Redrive { queue } => {
            anyhow::ensure!(
                queues.contains(&queue),
                "no queue {queue} in template.yaml (its queues: {})",
                queues.join(", ")
            );
            let queue = queue.as_str();
            let moved = local_cloud::dlq::redrive(&sqs, &url(queue, "DLQ_URL")?, &url(queue, "QUEUE_URL")?).await?;
            println!("moved {moved} message(s) from the {queue} dead-letter queue back to {queue}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The queues template.yaml gives the functions (`<NAME>_QUEUE_URL`), as
/// kebab-case names: `ORDER_PLACED_QUEUE_URL` is `order-placed`.
fn queue_names() -> anyhow::Result<Vec<String>> {
    let template = local_cloud::template::Template::load_project()?;
    Ok(template
        .environment_variable_names()?
        .into_iter()
        .filter_map(|name| name.strip_suffix("_QUEUE_URL").map(|queue| queue.to_lowercase().replace('_', "-")))
        .collect())
}
