//! `cargo xtask create-admin`: the one way an admin account comes to exist;
//! `cargo xtask admin reset-second-factor`: the way back in for an admin who
//! lost their second factor. Both act on the running dev stack's table, or
//! on the one `--table` names (with the usual AWS credentials).

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

    let users = adapters::dynamo::DynamoUserStore::new(table(args.table).await?);
    let hasher = framework::auth::PasswordHasher::new();
    match app::auth::create_user(&users, &hasher, email, &password, domain::Role::Admin, "create-admin").await {
        Ok((user, _event)) => {
            println!("created admin {} ({})", user.email, user.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => bail!("could not create the admin: {error}"),
    }
}

/// The table the operator's commands act on: `table` (a deployed one, with
/// the usual AWS credentials), or the running dev stack's.
async fn table(table: Option<String>) -> anyhow::Result<adapters::dynamo::Table> {
    let (config, table) = if let Some(table) = table {
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
    Ok(adapters::dynamo::Table::from_config(&config, table))
}

/// The operator's doors for an account (`cargo xtask admin <action>`).
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub action: AdminAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminAction {
    /// Remove the account's TOTP enrolment and recovery codes and end its
    /// sessions, for an admin who lost both; the address is typed again on
    /// stdin to confirm. Verify the person first (docs/operations.md).
    ResetSecondFactor(Account),
}

/// One account, by its email address, in the dev stack or in `--table`.
#[derive(Debug, clap::Args)]
pub struct Account {
    #[arg(long)]
    pub email: String,
    /// A deployed table's name; the running dev stack's table when absent.
    #[arg(long)]
    pub table: Option<String>,
}

pub async fn run_admin(args: AdminArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        AdminAction::ResetSecondFactor(account) => reset_second_factor(account).await,
    }
}

/// Removes `account`'s second factor and ends its sessions, once the
/// operator typed the address again; running it twice is harmless.
async fn reset_second_factor(account: Account) -> anyhow::Result<ExitCode> {
    let email = domain::Email::parse(&account.email).map_err(|e| anyhow::anyhow!("{e}"))?;
    eprint!("type {email} again to remove its second factor and end its sessions (read from stdin): ");
    std::io::stderr().flush()?;
    let mut typed = String::new();
    std::io::stdin().lock().read_line(&mut typed)?;
    eprintln!();
    if !domain::Email::parse(typed.trim()).is_ok_and(|typed| typed == email) {
        bail!("the address typed is not {email}: nothing was changed");
    }
    let table = table(account.table).await?;
    let users = adapters::dynamo::DynamoUserStore::new(table.clone());
    let factors = adapters::dynamo::DynamoSecondFactorStore::new(table.clone());
    let sessions = adapters::dynamo::DynamoSessionStore::new(table);
    match app::mfa::reset(&users, &factors, &sessions, &email).await {
        Ok(reset) => {
            let factor = if reset.factor_removed {
                "TOTP enrolment and recovery codes removed"
            } else {
                "no second factor was enrolled"
            };
            println!("{email} ({}): {factor}; {} session(s) ended", reset.user_id, reset.sessions_ended);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => bail!("could not reset the second factor of {email}: {error}"),
    }
}
