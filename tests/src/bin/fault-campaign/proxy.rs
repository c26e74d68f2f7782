//! Small userspace TCP proxies that carry the cluster's route traffic, one per
//! ordered pair of nodes (node i dials node j through proxy (i, j)), so the nemesis
//! can cut one node off from the others: it closes every connection through the
//! proxies of that node's pairs and refuses new ones until healed. Client traffic
//! (replicas to nodes) does not go through them: a cut-off node still has its
//! clients, as a partitioned server in a data centre would.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bytes copied per read.
const COPY_BUFFER_BYTES: usize = 64 * 1024;

/// One proxy: `127.0.0.1:<port>` → `127.0.0.1:<target>`.
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub fn start(target: u16) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        assert_ne!(port, fundtrail_testkit::NATS_DEFAULT_PORT);
        let cut = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (cut2, live2) = (cut.clone(), live.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                if cut2.load(Ordering::SeqCst) {
                    let _ = inbound.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect_timeout(&([127, 0, 0, 1], target).into(), Duration::from_secs(2))
                else {
                    let _ = inbound.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                {
                    let mut live = live2.lock().unwrap();
                    live.retain(|s| s.peer_addr().is_ok());
                    for s in [&inbound, &outbound] {
                        if let Ok(clone) = s.try_clone() {
                            live.push(clone);
                        }
                    }
                }
                pipe(&inbound, &outbound);
                pipe(&outbound, &inbound);
            }
        });
        Ok(Proxy { port, cut, live })
    }

    /// Closes every connection through it and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.live.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` on a thread until either side closes.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; COPY_BUFFER_BYTES];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// The proxies of a cluster of `n` nodes: `pair[i][j]` carries node i's route to
/// node j (none on the diagonal).
pub struct Mesh {
    pair: Vec<Vec<Option<Proxy>>>,
}

impl Mesh {
    /// Proxies for every ordered pair, to the nodes' `cluster_ports`.
    pub fn start(cluster_ports: &[u16]) -> std::io::Result<Mesh> {
        let n = cluster_ports.len();
        let mut pair = Vec::new();
        for i in 0..n {
            let mut row = Vec::new();
            for (j, port) in cluster_ports.iter().enumerate() {
                row.push(if i == j { None } else { Some(Proxy::start(*port)?) });
            }
            pair.push(row);
        }
        Ok(Mesh { pair })
    }

    /// The ports node `i` dials: its own cluster port for itself (as `deploy/` lists
    /// every node, itself included), the proxies for the others.
    pub fn routes_of(&self, i: usize, cluster_ports: &[u16]) -> Vec<u16> {
        (0..self.pair.len()).map(|j| self.pair[i][j].as_ref().map(|p| p.port).unwrap_or(cluster_ports[i])).collect()
    }

    /// Cuts node `k` off from the others (both directions).
    pub fn isolate(&self, k: usize) {
        for (i, row) in self.pair.iter().enumerate() {
            for (j, proxy) in row.iter().enumerate() {
                if let Some(proxy) = proxy {
                    if i == k || j == k {
                        proxy.cut();
                    }
                }
            }
        }
    }

    /// Heals every cut.
    pub fn heal(&self) {
        for proxy in self.pair.iter().flatten().flatten() {
            proxy.heal();
        }
    }
}
