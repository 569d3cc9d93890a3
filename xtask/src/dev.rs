//! `cargo xtask dev`: the whole system on this machine, as the cloud runs it.

use std::process::ExitCode;

use anyhow::bail;
use local_cloud::cloud::{CloudConfig, Ports};
use local_cloud::procs::port_in_use;
use local_cloud::stack::{LocalStack, StackConfig};
use local_cloud::template::Template;
use local_cloud::{local_dir, tools};

use crate::shell::{cargo, run_checked, write_env_file};

/// Runs the local cloud, every function behind the local API front, and queue
/// delivery; rebuilds a function when its code changes; Ctrl-C stops everything.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the API listens.
    #[arg(long, default_value_t = 9000)]
    pub api_port: u16,
    /// Where DynamoDB Local listens.
    #[arg(long, default_value_t = 8000)]
    pub dynamodb_port: u16,
    /// Where moto (SQS, Secrets Manager, SES) listens.
    #[arg(long, default_value_t = 5000)]
    pub moto_port: u16,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let api_port = args.api_port;
    let ports = Ports { dynamodb: args.dynamodb_port, moto: args.moto_port };
    for (what, port) in [("API", api_port), ("DynamoDB Local", ports.dynamodb), ("moto", ports.moto)] {
        if port_in_use(port) {
            bail!(
                "port {port} (for {what}) is in use: is another dev stack running? Pick others with --api-port, --dynamodb-port, --moto-port"
            );
        }
    }
    let tools = tools::ensure()?;
    let template = Template::load_project()?;
    let dir = local_dir().join("dev");
    let functions_log = crate::logs::dev_log(api_port);
    eprintln!("xtask: building every function...");
    run_checked(cargo().args(["build", "--workspace", "--bins", "--quiet"]), "cargo build")?;

    let config = StackConfig {
        cloud: CloudConfig {
            ports,
            prefix: "shop".into(),
            dynamodb_data: Some(dir.join("dynamodb")),
            logs_dir: dir.join("logs"),
        },
        api_port,
        reload_on_change: true,
        // To a file `cargo xtask logs` reads; this terminal shows it readably below.
        functions_log: Some(functions_log.clone()),
        extra_env: Vec::new(),
    };
    let stack = LocalStack::start(&tools, &template, config).await?;
    write_env_file(&dir.join("cloud.env"), &stack.client_env())?;
    let base_url = stack.api_url.clone();

    println!(
        "\n\
         Shop API listening on {base_url}/api/v1\n\
         \n  reference       {base_url}/docs   (the document: {base_url}/openapi.yaml)\
         \n  DynamoDB Local  http://127.0.0.1:{dynamodb}   (data kept in .local/dev/dynamodb)\
         \n  moto (SQS, Secrets Manager, SES)  http://127.0.0.1:{moto}\
         \n  environment     .local/dev/cloud.env\n\
         \nTry it:\n\
         \n  curl -s {base_url}/api/v1/health\
         \n  curl -s -X POST {base_url}/api/v1/auth/register -H 'content-type: application/json' \\\
         \n       -d '{{\"email\":\"ada@example.com\",\"password\":\"correct horse battery\"}}'\
         \n  curl -s -X POST {base_url}/api/v1/auth/login -H 'content-type: application/json' \\\
         \n       -d '{{\"email\":\"ada@example.com\",\"password\":\"correct horse battery\"}}'\
         \n  curl -s {base_url}/api/v1/users/me -H \"authorization: Bearer $TOKEN\"\n\
         \nIn front of the functions, as API Gateway and WAF in the cloud: routes, CORS preflights, 100 requests/min per client.\
         \nQueues are delivered to their consumers as Lambda would; the outbox relay runs on its schedule.\
         \nFunction logs:  below, readably; filter them with cargo xtask logs -f --function <name> | --request-id <id> | --level warn\
         \n                (every line, builds included: --all; raw JSON lines: {log})\
         \nEmails:         cargo xtask mail [--to <address>]   (what SES would have sent; a link comes with the curl that follows it)\
         \nQueues:         cargo xtask dlq list | cargo xtask dlq redrive <queue>\
         \nMake an admin:  echo 'a long password' | cargo xtask create-admin --email admin@example.com\
         \nPress Ctrl-C to stop everything.\n",
        dynamodb = ports.dynamodb,
        moto = ports.moto,
        log = functions_log.strip_prefix(local_cloud::project_root()).unwrap_or(&functions_log).display(),
    );
    crate::logs::spawn_follow(functions_log);
    wait_for_shutdown().await;
    eprintln!("\nxtask: stopping...");
    drop(stack);
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_shutdown() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
