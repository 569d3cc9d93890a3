//! One local stack, shared by `cargo xtask dev` and `cargo xtask test`: the
//! local cloud, every function under `cargo lambda watch`, the local API
//! front before them, and Lambda's event sources. Dropping the value stops
//! everything it started.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cloud::{CloudConfig, LocalCloud};
use crate::eventsource;
use crate::front::{Front, FrontConfig};
use crate::procs::{Service, free_port};
use crate::template::Template;
use crate::tools::Tools;

/// How to run one stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub cloud: CloudConfig,
    /// Where clients call the API (the front).
    pub api_port: u16,
    /// Rebuild and restart a function when its code changes (dev).
    pub reload_on_change: bool,
    /// The functions' output; to this terminal when `None`.
    pub functions_log: Option<PathBuf>,
    /// Variables every function gets beyond the template's.
    pub extra_env: Vec<(String, String)>,
}

/// A running stack. Fields drop in order: event sources, front, functions, cloud.
pub struct LocalStack {
    /// What every function runs with.
    pub env: Vec<(String, String)>,
    /// The API as clients call it, through the front (`.../api/v1/...`).
    pub api_url: String,
    /// `cargo lambda watch` itself, for direct invocations (`/2015-03-31/functions/...`).
    pub functions_url: String,
    deliveries: Vec<JoinHandle<()>>,
    front: Front,
    functions: Service,
    pub cloud: LocalCloud,
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        self.deliveries.iter().for_each(JoinHandle::abort);
    }
}

impl LocalStack {
    /// What a client of the stack needs (the test binaries, a developer's
    /// shell through `cloud.env`): the functions' environment, and where the
    /// API, the functions, the cloud's names and moto are.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        env.push(("SHOP_API_URL".into(), self.api_url.clone()));
        env.push(("SHOP_FUNCTIONS_URL".into(), self.functions_url.clone()));
        env.push(("SHOP_LOCAL_PREFIX".into(), self.cloud.names.prefix.clone()));
        env.push(("SHOP_MOTO_ENDPOINT".into(), self.cloud.moto_endpoint()));
        env
    }

    /// Starts the cloud, provisions it from `template`, serves every function
    /// behind the front and starts the event sources; returns once the API is healthy.
    pub async fn start(tools: &Tools, template: &Template, config: StackConfig) -> anyhow::Result<Self> {
        // Held from the start, so nothing else takes the API port meanwhile.
        let listener = TcpListener::bind(("127.0.0.1", config.api_port)).await.map_err(|error| {
            anyhow::anyhow!("port {} (for the API) is not free: {error}. Is another stack running?", config.api_port)
        })?;
        let cloud = LocalCloud::start(tools, config.cloud.clone())?;
        cloud.provision(template).await?;
        let mut env = cloud.function_env(template)?;
        env.push((crate::reference::ASSETS_DIR_VARIABLE.to_owned(), tools.swagger_ui.display().to_string()));
        env.extend(config.extra_env.iter().cloned());

        let functions_port = free_port()?;
        let functions =
            start_functions(tools, &env, functions_port, config.functions_log.clone(), config.reload_on_change)?;
        let functions_url = format!("http://127.0.0.1:{functions_port}");
        let front = Front::start(listener, front_config(template, &cloud, functions_url.clone())?)?;
        let api_url = front.url();
        let mut stack = Self { env, api_url, functions_url, deliveries: Vec::new(), front, functions, cloud };
        stack.wait_for_health().await?;
        let invoker = eventsource::Invoker::new(stack.functions_url.clone());
        stack.deliveries = eventsource::start(&stack.cloud, template, invoker).await?;
        Ok(stack)
    }

    /// Waits until GET /api/v1/health answers 200 (the first call starts the function).
    async fn wait_for_health(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut last = String::new();
        while Instant::now() < deadline {
            self.functions.check_running()?;
            match client.get(format!("{}/api/v1/health", self.api_url)).timeout(Duration::from_secs(30)).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => last = format!("status {}", response.status()),
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        bail!("the API did not become healthy ({last}){}", self.functions.log_hint())
    }

    /// Where the front listens.
    pub fn api_port(&self) -> u16 {
        self.front.address.port()
    }
}

/// The front's rules, from the same template the cloud deploys: its routes,
/// the WAF's rate, the API's CORS allow-list and the trusted client header.
fn front_config(template: &Template, cloud: &LocalCloud, upstream: String) -> anyhow::Result<FrontConfig> {
    let routes = template.functions()?.into_iter().flat_map(|function| function.routes).collect();
    let parameter = |name: &str| template.parameter(&template.root, name, &cloud.names);
    let header = parameter("ClientIpHeader")?;
    Ok(FrontConfig {
        routes,
        upstream,
        requests_per_minute: parameter("RateLimitPerMinute")?.parse()?,
        client_ip_header: (!header.is_empty()).then_some(header.to_lowercase()),
        cors_allowed_origins: parameter("CorsAllowedOrigins")?
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Starts `cargo lambda watch` serving every function on `port`.
fn start_functions(
    tools: &Tools,
    env: &[(String, String)],
    port: u16,
    log: Option<PathBuf>,
    reload_on_change: bool,
) -> anyhow::Result<Service> {
    let mut watch = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    watch
        .current_dir(crate::project_root())
        .args([
            "lambda",
            "watch",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
            "--disable-cors",
        ])
        .env("PATH", tools.path_env())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if !reload_on_change {
        watch.arg("--ignore-changes");
    }
    let mut service = Service::start("cargo lambda watch", watch, log)?;
    service.wait_for_port(port, Duration::from_secs(180))?;
    Ok(service)
}
