//! A 3-node JetStream cluster on free loopback ports, rendered from the files in
//! `deploy/` (`cluster/node-{1,2,3}.conf` and `accounts.conf`) with only the ports,
//! the store directories and the route URLs substituted — so a test on it proves that
//! `deploy/` works as written, the restricted accounts and their passwords (from the
//! environment of nats-server) included.
//!
//! Layout of the cluster's temporary directory, as in `deploy/`:
//! `accounts.conf`, `cluster/node-N.conf` (which includes `../accounts.conf`),
//! `node-N/jetstream` (the store), `node-N.log`.
//!
//! Every node listens on 127.0.0.1 only (client, cluster and monitoring ports, never
//! 4222). Nodes can be killed (SIGKILL), paused (SIGSTOP/SIGCONT) and restarted on
//! the same ports and store. Routes go straight to the nodes' cluster ports, or (for
//! a fault campaign that cuts one node off) through ports the caller chooses.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::{find_binary, free_port, web, NATS_DEFAULT_PORT, SERVER_READY_TIMEOUT};

/// Nodes in the cluster (`deploy/cluster/node-{1,2,3}.conf`).
pub const NODES: usize = 3;
/// Times `start` picks fresh ports when the cluster fails to come up.
pub const CLUSTER_START_ATTEMPTS_MAX: u32 = 3;
/// The stream replicas the cluster is for (`serve --replicas 3`).
pub const STREAM_REPLICAS: usize = 3;
/// The restricted user of `deploy/accounts.conf` that `serve` connects as.
pub const SERVICE_USER: &str = "fundtrail";
/// The read-only user of `deploy/accounts.conf` (`verify --nats`).
pub const AUDITOR_USER: &str = "auditor";
const POLL: Duration = Duration::from_millis(100);

/// The ports of one node.
#[derive(Clone, Copy, Debug)]
pub struct NodePorts {
    pub client: u16,
    pub cluster: u16,
    pub http: u16,
}

impl NodePorts {
    /// Three free loopback ports (never 4222).
    pub fn free() -> Result<NodePorts> {
        Ok(NodePorts { client: free_port()?, cluster: free_port()?, http: free_port()? })
    }
}

/// Where each node's routes go and what it advertises to the others.
pub struct Routing {
    /// `routes[i]`: the ports node `i` dials to reach every node (its own included,
    /// as in `deploy/`; a server ignores the route to itself).
    pub routes: Vec<Vec<u16>>,
    /// `advertise[i]`: the cluster address node `i` gossips, if not its own port.
    pub advertise: Vec<Option<u16>>,
}

impl Routing {
    /// Routes straight to the nodes' cluster ports.
    pub fn direct(ports: &[NodePorts]) -> Routing {
        let all: Vec<u16> = ports.iter().map(|p| p.cluster).collect();
        Routing { routes: vec![all; ports.len()], advertise: vec![None; ports.len()] }
    }
}

/// The passwords of the accounts, from the OS RNG, passed to nats-server in its
/// environment as `deploy/accounts.conf` expects.
#[derive(Clone)]
pub struct Passwords {
    pub service: String,
    pub auditor: String,
    pub admin: String,
}

impl Passwords {
    fn random() -> Passwords {
        Passwords {
            service: crate::serve::random_token(),
            auditor: crate::serve::random_token(),
            admin: crate::serve::random_token(),
        }
    }

    fn env(&self) -> [(&'static str, &str); 3] {
        [
            ("FUNDTRAIL_NATS_PASSWORD", self.service.as_str()),
            ("FUNDTRAIL_AUDITOR_PASSWORD", self.auditor.as_str()),
            ("NATS_ADMIN_PASSWORD", self.admin.as_str()),
        ]
    }
}

/// One node: its ports, rendered configuration and process.
pub struct Node {
    /// `fundtrail-N` (the `server_name` of `deploy/cluster/node-N.conf`).
    pub name: String,
    pub ports: NodePorts,
    config: PathBuf,
    log: PathBuf,
    child: Mutex<Option<Child>>,
}

impl Node {
    /// `nats://127.0.0.1:<client port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.ports.client)
    }

    /// `http://127.0.0.1:<monitoring port>`.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.http)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|c| c.id())
    }

    /// True while the process runs (paused included).
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL (no shutdown, no final sync) and reap; nothing if not running.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = signal(child.id(), "CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process stays, silent (its sockets open, nothing answered).
    pub fn pause(&self) -> Result<()> {
        signal(self.pid().context("node not running")?, "STOP")
    }

    /// SIGCONT after [`Node::pause`].
    pub fn resume(&self) -> Result<()> {
        signal(self.pid().context("node not running")?, "CONT")
    }

    /// Whether `GET /healthz` answers 200 (JetStream current with the cluster).
    pub fn healthy(&self) -> bool {
        web::get_text(&format!("{}/healthz", self.monitor_url())).is_some()
    }

    /// The node's log so far (appended to across restarts).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn spawn(&self, binary: &Path, passwords: &Passwords) -> Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).context("node log")?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&self.config)
            .envs(passwords.env())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }
}

fn signal(pid: u32, name: &str) -> Result<()> {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().context("run kill")?;
    ensure!(status.success(), "kill -{name} {pid} failed");
    Ok(())
}

/// A running 3-node cluster; every node killed on drop.
pub struct NatsCluster {
    binary: PathBuf,
    dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub passwords: Passwords,
}

impl NatsCluster {
    /// Starts the cluster of `deploy` (the repository's `deploy/` directory) with
    /// direct routes, once all nodes are healthy.
    pub fn start(deploy: &Path) -> Result<NatsCluster> {
        let mut last = None;
        for _ in 0..CLUSTER_START_ATTEMPTS_MAX {
            let ports = (0..NODES).map(|_| NodePorts::free()).collect::<Result<Vec<_>>>()?;
            let routing = Routing::direct(&ports);
            match NatsCluster::start_routed(deploy, &ports, &routing) {
                Ok(cluster) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("one attempt")).context(format!("cluster not up in {CLUSTER_START_ATTEMPTS_MAX} attempts"))
    }

    /// Starts the cluster of `deploy` on these ports and routes.
    pub fn start_routed(deploy: &Path, ports: &[NodePorts], routing: &Routing) -> Result<NatsCluster> {
        ensure!(ports.len() == NODES && routing.routes.len() == NODES, "{NODES} nodes");
        let binary = find_binary()?;
        let dir = tempfile::Builder::new().prefix("fundtrail-cluster-").tempdir().context("cluster temp dir")?;
        let accounts = std::fs::read_to_string(deploy.join("accounts.conf")).context("reading deploy/accounts.conf")?;
        std::fs::write(dir.path().join("accounts.conf"), accounts)?;
        std::fs::create_dir(dir.path().join("cluster"))?;
        let mut nodes = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let n = i + 1;
            let template = deploy.join(format!("cluster/node-{n}.conf"));
            let text = std::fs::read_to_string(&template).with_context(|| format!("reading {}", template.display()))?;
            let store = dir.path().join(format!("node-{n}")).join("jetstream");
            let rendered = render_node(&text, p, &store, &routing.routes[i], routing.advertise[i])
                .with_context(|| format!("rendering {}", template.display()))?;
            let config = dir.path().join(format!("cluster/node-{n}.conf"));
            std::fs::write(&config, rendered)?;
            nodes.push(Node {
                name: format!("fundtrail-{n}"),
                ports: *p,
                config,
                log: dir.path().join(format!("node-{n}.log")),
                child: Mutex::new(None),
            });
        }
        let cluster = NatsCluster { binary, dir, nodes, passwords: Passwords::random() };
        for node in &cluster.nodes {
            node.spawn(&cluster.binary, &cluster.passwords)?;
        }
        cluster.wait_healthy(SERVER_READY_TIMEOUT).map_err(|e| e.context(cluster.log_tails()))?;
        Ok(cluster)
    }

    /// `nats://…:a,nats://…:b,nats://…:c`, the form `serve --nats` takes.
    pub fn urls(&self) -> String {
        self.nodes.iter().map(Node::url).collect::<Vec<_>>().join(",")
    }

    /// The cluster's directory (configuration, stores, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The node at `index` started again (killed first if running), on its ports and
    /// store; returns once the process listens on its client port.
    pub fn restart(&self, index: usize) -> Result<()> {
        let node = &self.nodes[index];
        node.kill();
        let deadline = Instant::now() + SERVER_READY_TIMEOUT;
        loop {
            node.spawn(&self.binary, &self.passwords)?;
            let started = Instant::now();
            while node.is_running() && started.elapsed() < Duration::from_secs(10) {
                if std::net::TcpStream::connect(("127.0.0.1", node.ports.client)).is_ok() {
                    return Ok(());
                }
                std::thread::sleep(POLL);
            }
            node.kill();
            if Instant::now() >= deadline {
                bail!("{} did not start again:\n{}", node.name, tail(&node.log_text()));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Waits until every running node answers `/healthz` with 200.
    pub fn wait_healthy(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let unhealthy: Vec<&str> = self.nodes.iter().filter(|n| !n.healthy()).map(|n| n.name.as_str()).collect();
            if unhealthy.is_empty() {
                return Ok(());
            }
            if let Some(dead) = self.nodes.iter().find(|n| !n.is_running()) {
                bail!("{} is not running", dead.name);
            }
            if Instant::now() >= deadline {
                bail!("not healthy within {within:?}: {}", unhealthy.join(", "));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The index of the node named `name` (`fundtrail-2` → 1).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The last lines of every node's log, for failure messages.
    pub fn log_tails(&self) -> String {
        self.nodes.iter().map(|n| format!("--- {}:\n{}", n.name, tail(&n.log_text()))).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.kill();
        }
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// `deploy/cluster/node-N.conf` with its ports, store and routes made local. Each
/// substituted line must be found exactly as `deploy/` writes it: a changed file
/// fails here rather than run with something else.
pub fn render_node(
    template: &str,
    ports: &NodePorts,
    store: &Path,
    routes: &[u16],
    advertise: Option<u16>,
) -> Result<String> {
    for port in [ports.client, ports.cluster, ports.http] {
        ensure!(port != NATS_DEFAULT_PORT, "port {NATS_DEFAULT_PORT} is never used");
    }
    let mut out = String::new();
    let mut found = [false; 4];
    for line in template.lines() {
        let trimmed = line.trim();
        if trimmed == "port: 4222" && !line.starts_with(' ') {
            out += &format!("host: 127.0.0.1\nport: {}\nhttp: \"127.0.0.1:{}\"\n", ports.client, ports.http);
            found[0] = true;
        } else if trimmed.starts_with("jetstream {") && trimmed.contains("\"/var/lib/nats/jetstream\"") {
            out += &line.replace("\"/var/lib/nats/jetstream\"", &format!("{:?}", store.display().to_string()));
            out.push('\n');
            found[1] = true;
        } else if trimmed == "port: 6222" && line.starts_with(' ') {
            out += &format!("  host: 127.0.0.1\n  port: {}\n", ports.cluster);
            if let Some(port) = advertise {
                out += &format!("  advertise: \"127.0.0.1:{port}\"\n");
            }
            found[2] = true;
        } else if trimmed.starts_with("routes: [") {
            let list: Vec<String> = routes.iter().map(|p| format!("\"nats-route://127.0.0.1:{p}\"")).collect();
            out += &format!("  routes: [{}]\n", list.join(", "));
            found[3] = true;
        } else {
            out += line;
            out.push('\n');
        }
    }
    let names =
        ["port: 4222", "jetstream { store_dir: \"/var/lib/nats/jetstream\" … }", "  port: 6222", "routes: [...]"];
    for (seen, name) in found.iter().zip(names) {
        ensure!(*seen, "the line {name} of deploy/ was not found");
    }
    ensure!(template.contains("include \"../accounts.conf\""), "the node does not include ../accounts.conf");
    Ok(out)
}

/// JetStream's own view of a stream in the cluster, from `$JS.API.STREAM.INFO`.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// The leader's server name (`fundtrail-2`), if one is elected.
    pub leader: Option<String>,
    pub last_seq: u64,
    pub messages: u64,
    pub replicas: usize,
}

/// Asks `$JS.API.STREAM.INFO.<stream>` through the node at `url` as `user`.
pub fn stream_info(url: &str, user: &str, password: &str, stream: &str, timeout: Duration) -> Result<StreamInfo> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let connect = async_nats::ConnectOptions::new()
            .user_and_password(user.to_owned(), password.to_owned())
            .connection_timeout(timeout)
            .max_reconnects(Some(1));
        let client = tokio::time::timeout(timeout, connect.connect(url))
            .await
            .context("connect timed out")?
            .context("connect")?;
        let subject = format!("$JS.API.STREAM.INFO.{stream}");
        let reply = tokio::time::timeout(timeout, client.request(subject, "".into()))
            .await
            .context("STREAM.INFO timed out")?
            .context("STREAM.INFO")?;
        let value: serde_json::Value = serde_json::from_slice(&reply.payload).context("STREAM.INFO is not JSON")?;
        if let Some(error) = value.get("error") {
            bail!("STREAM.INFO: {error}");
        }
        let cluster = &value["cluster"];
        let replicas = 1 + cluster["replicas"].as_array().map(|r| r.len()).unwrap_or(0);
        Ok(StreamInfo {
            leader: cluster["leader"].as_str().filter(|l| !l.is_empty()).map(str::to_owned),
            last_seq: value["state"]["last_seq"].as_u64().unwrap_or(0),
            messages: value["state"]["messages"].as_u64().unwrap_or(0),
            replicas,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
    }

    #[test]
    fn deploy_files_render_with_local_ports_only() {
        let text = std::fs::read_to_string(deploy().join("cluster/node-2.conf")).unwrap();
        let ports = NodePorts { client: 40001, cluster: 40002, http: 40003 };
        let out =
            render_node(&text, &ports, Path::new("/tmp/x/jetstream"), &[40002, 40012, 40022], Some(40099)).unwrap();
        assert!(out.contains("port: 40001") && out.contains("port: 40002") && out.contains("127.0.0.1:40003"));
        assert!(out.contains("nats-route://127.0.0.1:40012") && out.contains("advertise: \"127.0.0.1:40099\""));
        assert!(out.contains("\"/tmp/x/jetstream\"") && out.contains("sync_interval: always"), "{out}");
        let mut settings = out.lines().filter(|l| !l.trim_start().starts_with('#'));
        assert!(settings.all(|l| !l.contains("4222") && !l.contains("6222")), "{out}");
        assert!(out.contains("server_name: fundtrail-2") && out.contains("include \"../accounts.conf\""));
        assert!(render_node("port: 4222\n", &ports, Path::new("/s"), &[], None).is_err());
    }
}
