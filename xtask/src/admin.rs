//! `cargo xtask create-admin`: the one way an admin account comes to exist.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use local_cloud::local_dir;

use crate::shell::read_env_file;

/// Creates an admin account (password read from stdin, at least
/// `domain::password::ADMIN_MIN_LENGTH` characters) in the dev stack, or
/// in the table given by --table (with the usual AWS credentials).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub email: String,
    /// A deployed table's name; the running dev stack's table when absent.
    #[arg(long)]
    pub table: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let email = domain::Email::parse(&args.email).map_err(|e| anyhow::anyhow!("{e}"))?;
    eprint!("password for {email} (read from stdin): ");
    std::io::stderr().flush()?;
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = domain::Password::parse_admin(password.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!();

    let (config, table) = if let Some(table) = args.table {
        (aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await, table)
    } else {
        let env: BTreeMap<String, String> = read_env_file(&local_dir().join("dev/cloud.env"))
            .context("is `cargo xtask dev` running?")?
            .into_iter()
            .collect();
        let base = local_cloud::cloud::base_sdk_config().await;
        let endpoint = env.get("AWS_ENDPOINT_URL_DYNAMODB").context("no DynamoDB endpoint in cloud.env")?;
        let config = base.into_builder().endpoint_url(endpoint).build();
        (config, env.get("TABLE_NAME").context("no TABLE_NAME in cloud.env")?.clone())
    };
    let users = adapters::dynamo::DynamoUserStore::new(adapters::dynamo::Table::from_config(&config, table));
    let hasher = framework::auth::PasswordHasher::new();
    match app::auth::create_user(&users, &hasher, email, &password, domain::Role::Admin, "create-admin").await {
        Ok((user, _event)) => {
            println!("created admin {} ({})", user.email, user.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => bail!("could not create the admin: {error}"),
    }
}
