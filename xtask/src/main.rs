//! `cargo xtask <command>`: every developer chore, in Rust.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use local_cloud::cloud::{CloudConfig, Ports};
use local_cloud::procs::{free_port, port_in_use};
use local_cloud::stack::{LocalStack, StackConfig};
use local_cloud::template::Template;
use local_cloud::{local_dir, project_root, tools};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  dev                 run the whole system locally (local cloud, every function, queue delivery)
  test                run every test against a fresh local cloud, then lint the template
  package             build every function for arm64 (release) in one cargo invocation into
                      target/lambda/<function>/, where template.yaml's CodeUri points; prints sizes
  bench               measure every function (release build): cold start vs a hello-world
                      lambda_runtime binary, first and warm request, peak memory; and the
                      HTTP layer's overhead per request; writes target/bench.md
  dlq list            show each dead-letter queue's depth and its messages' reasons
  dlq redrive QUEUE   move QUEUE's dead letters back to QUEUE (user-created, order-placed, email-send)
                      (both act on the dev stack, or with --env-file FILE on the queues it names)
  create-admin --email EMAIL
                      create an admin account (password read from stdin) in the dev stack,
                      or in the table given by --table (with the usual AWS credentials)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let outcome = match args.first().map(String::as_str) {
        Some("dev") => runtime.block_on(dev(&args[1..])),
        Some("test") => runtime.block_on(test(&args[1..])),
        Some("create-admin") => runtime.block_on(create_admin(&args[1..])),
        Some("dlq") => runtime.block_on(dlq(&args[1..])),
        Some("package") => package(),
        Some("bench") => runtime.block_on(bench(&args[1..])),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads `--name value` from the argument list.
fn option(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn port_option(args: &[String], name: &str, default: u16) -> anyhow::Result<u16> {
    option(args, name).map_or(Ok(default), |v| v.parse().with_context(|| format!("{name} must be a port number")))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(project_root());
    command
}

fn run_checked(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("could not run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn write_env_file(path: &Path, env: &[(String, String)]) -> anyhow::Result<()> {
    let mut text = String::new();
    for (key, value) in env {
        text.push_str(&format!("{key}={value}\n"));
    }
    std::fs::create_dir_all(path.parent().expect("env files live in a folder"))?;
    std::fs::write(path, text)?;
    Ok(())
}

fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

/// A cloud of its own, on free ports and in memory: a stack made from it
/// never touches a running dev stack.
fn private_cloud(prefix: &str, dir: &Path) -> anyhow::Result<CloudConfig> {
    Ok(CloudConfig {
        ports: Ports { dynamodb: free_port()?, moto: free_port()? },
        prefix: prefix.into(),
        dynamodb_data: None,
        logs_dir: dir.join("logs"),
    })
}

// ------------------------------------------------------------------- dev

async fn dev(args: &[String]) -> anyhow::Result<ExitCode> {
    let api_port = port_option(args, "--api-port", 9000)?;
    let ports = Ports {
        dynamodb: port_option(args, "--dynamodb-port", 8000)?,
        moto: port_option(args, "--moto-port", 5000)?,
    };
    for (what, port) in [("API", api_port), ("DynamoDB Local", ports.dynamodb), ("moto", ports.moto)] {
        if port_in_use(port) {
            bail!("port {port} (for {what}) is in use: is another dev stack running? Pick others with --api-port, --dynamodb-port, --moto-port");
        }
    }
    let tools = tools::ensure()?;
    let template = Template::load_project()?;
    let dir = local_dir().join("dev");
    eprintln!("xtask: building every function...");
    run_checked(cargo().args(["build", "--workspace", "--bins", "--quiet"]), "cargo build")?;

    let config = StackConfig {
        cloud: CloudConfig { ports, prefix: "shop".into(), dynamodb_data: Some(dir.join("dynamodb")), logs_dir: dir.join("logs") },
        api_port,
        reload_on_change: true,
        functions_log: None,
        extra_env: Vec::new(),
    };
    let stack = LocalStack::start(&tools, &template, config).await?;
    let mut env = stack.env.clone();
    env.push(("SHOP_API_URL".into(), stack.api_url.clone()));
    env.push(("SHOP_FUNCTIONS_URL".into(), stack.functions_url.clone()));
    write_env_file(&dir.join("cloud.env"), &env)?;
    let base_url = stack.api_url.clone();

    println!(
        "\n\
         Shop API listening on {base_url}/api/v1\n\
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
         \nDead letters:   cargo xtask dlq list | cargo xtask dlq redrive <queue>\
         \nMake an admin:  echo 'a long password' | cargo xtask create-admin --email admin@example.com\
         \nPress Ctrl-C to stop everything.\n",
        dynamodb = ports.dynamodb,
        moto = ports.moto,
    );
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

// ------------------------------------------------------------------ test

async fn test(args: &[String]) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // `cargo xtask test -- FILTER...` runs only the matching tests (an inner
    // loop); the whole-suite checks (IAM, clippy, template lint) need every test.
    let filter: Vec<String> = args.iter().skip_while(|a| *a != "--").skip(1).cloned().collect();
    let tools = tools::ensure()?;
    let template = Template::load_project()?;
    eprintln!("xtask: building the workspace and its tests...");
    run_checked(cargo().args(["build", "--workspace", "--all-targets", "--quiet"]), "cargo build")?;
    let test_binaries = test_executables()?;

    let dir = local_dir().join("test");
    let _ = std::fs::remove_dir_all(&dir);
    let calls_file = dir.join("aws-calls.tsv");
    let config = StackConfig {
        cloud: private_cloud("test", &dir)?,
        api_port: free_port()?,
        reload_on_change: false,
        functions_log: Some(dir.join("logs/functions.log")),
        extra_env: vec![("SHOP_RECORD_AWS_CALLS".into(), calls_file.display().to_string())],
    };
    let stack = LocalStack::start(&tools, &template, config).await?;
    let mut env = stack.env.clone();
    env.push(("SHOP_API_URL".into(), stack.api_url.clone()));
    env.push(("SHOP_FUNCTIONS_URL".into(), stack.functions_url.clone()));
    let cloud_prefix = stack.cloud.names.prefix.clone();
    env.push(("SHOP_LOCAL_PREFIX".into(), cloud_prefix.clone()));
    env.push(("SHOP_MOTO_ENDPOINT".into(), stack.cloud.moto_endpoint()));
    write_env_file(&dir.join("cloud.env"), &env)?;

    let mut failures = Vec::new();
    for binary in &test_binaries {
        let name = binary.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
        eprintln!("\nxtask: running {name}");
        let status = Command::new(binary)
            .args(&filter)
            .current_dir(project_root())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .status()
            .with_context(|| format!("running {name}"))?;
        if !status.success() {
            failures.push(name);
        }
    }
    drop(stack);
    if !filter.is_empty() {
        return Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }

    eprintln!("\nxtask: checking every function's IAM policy against the AWS calls it made");
    match check_policies(&template, &calls_file, &cloud_prefix, &env) {
        Ok(problems) if problems.is_empty() => println!("xtask: IAM policies match the calls: 1 passed, 0 failed"),
        Ok(problems) => {
            for problem in &problems {
                eprintln!("  {problem}");
            }
            failures.push("IAM policies".into());
        }
        Err(error) => {
            eprintln!("xtask: {error:#}");
            failures.push("IAM policies".into());
        }
    }

    eprintln!("\nxtask: clippy (warnings are errors)");
    if run_checked(cargo().args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"]), "clippy").is_err() {
        failures.push("clippy".into());
    }
    eprintln!("\nxtask: linting template.yaml");
    if let Err(error) = lint(&tools) {
        eprintln!("xtask: {error:#}");
        failures.push("template lint".into());
    }
    eprintln!("\nxtask: test finished in {:.0?}", started.elapsed());
    if failures.is_empty() {
        println!("xtask: all checks passed");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: FAILED: {}", failures.join(", "));
        eprintln!("xtask: logs of the local cloud and functions are in {}", dir.join("logs").display());
        Ok(ExitCode::FAILURE)
    }
}

/// The compiled unit and integration test binaries of the workspace. They
/// are run directly, not through `cargo test`, so no cargo lock is held while
/// `cargo lambda watch` starts functions on demand.
fn test_executables() -> anyhow::Result<Vec<PathBuf>> {
    let output = cargo()
        .args(["test", "--workspace", "--no-run", "--message-format=json", "--quiet"])
        .stderr(Stdio::inherit())
        .output()
        .context("cargo test --no-run")?;
    if !output.status.success() {
        bail!("building the tests failed");
    }
    let mut binaries = Vec::new();
    for line in output.stdout.lines() {
        let message: serde_json::Value = serde_json::from_str(&line?).unwrap_or_default();
        if message["reason"] == "compiler-artifact"
            && message["profile"]["test"] == true
            && let Some(path) = message["executable"].as_str()
        {
            binaries.push(PathBuf::from(path));
        }
    }
    binaries.sort();
    binaries.dedup();
    Ok(binaries)
}

fn lint(tools: &tools::Tools) -> anyhow::Result<()> {
    let root = project_root();
    let mut templates = vec![PathBuf::from("template.yaml")];
    let mut nested: Vec<PathBuf> = std::fs::read_dir(root.join("infra"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    nested.sort();
    templates.extend(nested);
    run_checked(Command::new(tools.venv_bin.join("cfn-lint")).args(&templates).current_dir(&root), "cfn-lint")?;
    run_checked(
        Command::new(tools.venv_bin.join("sam"))
            .args(["validate", "--lint", "--template-file", "template.yaml", "--region", "us-east-1"])
            .env("SAM_CLI_TELEMETRY", "0")
            .env("PATH", tools.path_env())
            .current_dir(&root),
        "sam validate --lint",
    )?;
    // The stack as `sam deploy` creates it: expanded with samtranslator, then
    // checked (stages, IAM wildcards, deployment alarms, stateful resources,
    // samconfig) and scanned by checkov; exceptions in xtask/checks/exceptions.toml.
    let checkov = tools::ensure_checkov()?;
    run_checked(
        Command::new(tools.venv_bin.join("python"))
            .arg("xtask/checks/stack.py")
            .arg("--checkov")
            .arg(&checkov)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .current_dir(&root),
        "expanded stack check (xtask/checks/stack.py)",
    )?;
    Ok(())
}

// ---------------------------------------------------------- create-admin

async fn create_admin(args: &[String]) -> anyhow::Result<ExitCode> {
    let email = option(args, "--email").context("--email is required")?;
    let email = domain::Email::parse(&email).map_err(|e| anyhow::anyhow!("{e}"))?;
    eprint!("password for {email} (read from stdin): ");
    std::io::stderr().flush()?;
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = domain::Password::parse_new(password.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!();

    let (config, table) = match option(args, "--table") {
        Some(table) => (aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await, table),
        None => {
            let env: BTreeMap<String, String> =
                read_env_file(&local_dir().join("dev/cloud.env")).context("is `cargo xtask dev` running?")?.into_iter().collect();
            let base = local_cloud::cloud::base_sdk_config().await;
            let endpoint = env.get("AWS_ENDPOINT_URL_DYNAMODB").context("no DynamoDB endpoint in cloud.env")?;
            let config = base.into_builder().endpoint_url(endpoint).build();
            (config, env.get("TABLE_NAME").context("no TABLE_NAME in cloud.env")?.clone())
        }
    };
    let users = platform::dynamo::DynamoUserStore::new(platform::dynamo::Table::from_config(&config, table));
    let hasher = platform::auth::PasswordHasher::new();
    match app::auth::create_user(&users, &hasher, email, &password, domain::Role::Admin, "create-admin").await {
        Ok((user, _event)) => {
            println!("created admin {} ({})", user.email, user.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => bail!("could not create the admin: {error}"),
    }
}

// ------------------------------------------------------------------- dlq

async fn dlq(args: &[String]) -> anyhow::Result<ExitCode> {
    let env_file = option(args, "--env-file").map_or_else(|| local_dir().join("dev/cloud.env"), PathBuf::from);
    let env: BTreeMap<String, String> =
        read_env_file(&env_file).context("no queue settings: is `cargo xtask dev` running, or pass --env-file")?.into_iter().collect();
    let mut config = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = env.get("AWS_ENDPOINT_URL_SQS") {
        config = config.endpoint_url(endpoint).region(aws_config::Region::new(local_cloud::cloud::REGION)).credentials_provider(
            aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "local-cloud"),
        );
    }
    let sqs = aws_sdk_sqs::Client::new(&config.load().await);
    let queues = ["user-created", "order-placed", "email-send"];
    let url = |queue: &str, suffix: &str| {
        let name = queue.to_uppercase().replace('-', "_");
        env.get(&format!("{name}_{suffix}")).cloned().with_context(|| format!("{name}_{suffix} is not set"))
    };
    match args.first().map(String::as_str) {
        Some("list") => {
            for queue in queues {
                let messages = local_cloud::dlq::peek(&sqs, &url(queue, "DLQ_URL")?).await?;
                println!("{queue}: {} dead letter(s)", messages.len());
                for message in messages {
                    println!("  {}  reason: {}", message.id, message.reason.as_deref().unwrap_or("(redriven after repeated failures)"));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some("redrive") => {
            let queue = args.get(1).map(String::as_str).filter(|q| queues.contains(q)).context("name the queue to redrive")?;
            let moved = local_cloud::dlq::redrive(&sqs, &url(queue, "DLQ_URL")?, &url(queue, "QUEUE_URL")?).await?;
            println!("moved {moved} message(s) from the {queue} dead-letter queue back to {queue}");
            Ok(ExitCode::SUCCESS)
        }
        _ => bail!("usage: cargo xtask dlq list | dlq redrive <queue>"),
    }
}

// --------------------------------------------------------------- package

fn package() -> anyhow::Result<ExitCode> {
    let tools = tools::ensure()?;
    let template = Template::load_project()?;
    let functions: Vec<String> = template.functions()?.into_iter().map(|f| f.package).collect();
    let started = Instant::now();
    let mut build = cargo();
    build.args(["lambda", "build", "--release", "--arm64"]).env("PATH", tools.path_env());
    for function in &functions {
        build.args(["--package", function]);
    }
    run_checked(&mut build, "cargo lambda build")?;
    let built_in = started.elapsed();

    let mut report = format!("arm64 release build of {} functions in {built_in:.0?}\n\n", functions.len());
    report.push_str("| function | bootstrap (bytes) | zip (bytes) |\n|---|---:|---:|\n");
    let mut largest_zip = 0;
    for function in &functions {
        let dir = project_root().join("target/lambda").join(function);
        let binary = std::fs::metadata(dir.join("bootstrap")).with_context(|| format!("{function} was not built"))?.len();
        let zip = zipped_size(&tools, &dir.join("bootstrap"))?;
        largest_zip = largest_zip.max(zip);
        report.push_str(&format!("| {function} | {binary} | {zip} |\n"));
    }
    std::fs::write(project_root().join("target/lambda/sizes.md"), &report)?;
    println!("{report}\nlargest zip: {:.2} MB; written to target/lambda/sizes.md", largest_zip as f64 / 1e6);
    println!("deploy with: sam deploy --config-env dev   (CodeUri points at target/lambda/<function>/)");
    Ok(ExitCode::SUCCESS)
}

/// The size of `file` zipped as SAM packages it (deflate), via Python's zipfile.
fn zipped_size(tools: &tools::Tools, file: &Path) -> anyhow::Result<u64> {
    let script = "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED)\nz.write(sys.argv[1],'bootstrap')\nz.close()\nprint(len(b.getvalue()))";
    let output = Command::new(tools.venv_bin.join("python")).args(["-c", script]).arg(file).output()?;
    anyhow::ensure!(output.status.success(), "zipping {} failed", file.display());
    Ok(String::from_utf8(output.stdout)?.trim().parse()?)
}

fn check_policies(template: &Template, calls: &Path, prefix: &str, env: &[(String, String)]) -> anyhow::Result<Vec<String>> {
    let sender = env.iter().find(|(k, _)| k == "SENDER_EMAIL").map(|(_, v)| v.as_str()).unwrap_or_default();
    let granted = xtask::policies::granted(template)?;
    let observed = xtask::policies::observed(calls, prefix, sender)?;
    Ok(xtask::policies::compare(&granted, &observed))
}

// ----------------------------------------------------------------- bench

async fn bench(args: &[String]) -> anyhow::Result<ExitCode> {
    xtask::bench::run(args).await
}
