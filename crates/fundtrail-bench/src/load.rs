//! The HTTP load generator of `bench http`: `clients` kept-alive HTTP/1.1
//! connections (hyper's client), each posting one envelope at a time, all driven
//! by one thread of their own — as `wrk -t1 -c64` would.
//!
//! The load generator runs on the same two cores as the server it measures, so
//! whatever it spends is charged to the server's side of the ratio. One thread
//! waiting on all connections at once wakes once for any number of answers; 64
//! blocking client threads (the earlier generator, ureq agents) woke one thread
//! per answer, each a context switch the server paid for.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use crate::HTTP_REQUEST_TIMEOUT;

/// Posts every envelope to `path` on `addr` through `clients` connections and
/// returns each post's latency (in no particular order). Every post must be
/// accepted (201 or 202): anything else — a 503 included — ends the run, since
/// a healthy server under this load has no reason to refuse, and a generator
/// that resent refusals would hide them in its rate.
pub(crate) fn post_all(addr: SocketAddr, path: &str, envelopes: Vec<Vec<u8>>, clients: usize) -> Result<Vec<Duration>> {
    assert!(clients > 0, "at least one client");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let queue = Rc::new(RefCell::new(envelopes.into_iter().map(Bytes::from).collect::<VecDeque<_>>()));
    local.block_on(&runtime, async {
        let workers: Vec<_> =
            (0..clients).map(|_| tokio::task::spawn_local(client(addr, path.to_owned(), queue.clone()))).collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.await.map_err(|e| anyhow!("an HTTP client task failed: {e}"))??);
        }
        Ok(all)
    })
}

/// One client: one connection, one post at a time, until the queue is empty.
async fn client(addr: SocketAddr, path: String, queue: Rc<RefCell<VecDeque<Bytes>>>) -> Result<Vec<Duration>> {
    let stream = tokio::time::timeout(HTTP_REQUEST_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("connecting to {addr}: no answer within {HTTP_REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await.context("HTTP/1.1 handshake")?;
    let driver = tokio::task::spawn_local(connection);
    let host = addr.to_string();
    let mut latencies = Vec::new();
    loop {
        let Some(envelope) = queue.borrow_mut().pop_front() else { break };
        let request = hyper::Request::post(path.as_str())
            .header(hyper::header::HOST, host.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(envelope))?;
        let started = Instant::now();
        let post = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            // Read to the end, so the connection is kept for the next post.
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        let (status, body) = tokio::time::timeout(HTTP_REQUEST_TIMEOUT, post)
            .await
            .map_err(|_| anyhow!("POST {path}: no answer within {HTTP_REQUEST_TIMEOUT:?}"))?
            .with_context(|| format!("POST {path}"))?;
        latencies.push(started.elapsed());
        if status != hyper::StatusCode::CREATED && status != hyper::StatusCode::ACCEPTED {
            bail!("POST {path}: {status} {}", String::from_utf8_lossy(&body));
        }
    }
    drop(sender);
    driver.await.map_err(|e| anyhow!("an HTTP connection task failed: {e}"))?.context("closing the connection")?;
    Ok(latencies)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A loopback HTTP/1.1 server that answers each request with the status `answer`
    /// gives for its number (from 1), keeping connections open; returns its address.
    fn serve(answer: fn(usize) -> u16) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let served = served.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    loop {
                        let mut length = 0;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end().to_ascii_lowercase();
                            if line.is_empty() {
                                break;
                            }
                            if let Some(value) = line.strip_prefix("content-length:") {
                                length = value.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        let status = answer(n);
                        let text = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\n{{}}");
                        writer.write_all(text.as_bytes()).unwrap();
                    }
                });
            }
        });
        addr
    }

    fn envelopes(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("{{\"n\":{i}}}").into_bytes()).collect()
    }

    #[test]
    fn every_envelope_is_posted_once_and_timed() {
        let addr = serve(|n| if n % 2 == 0 { 201 } else { 202 });
        let latencies = post_all(addr, "/v1/events", envelopes(300), 8).unwrap();
        assert_eq!(latencies.len(), 300);
    }

    #[test]
    fn a_refusal_ends_the_run_naming_its_status() {
        let addr = serve(|n| if n == 40 { 503 } else { 201 });
        let err = post_all(addr, "/v1/events", envelopes(300), 8).unwrap_err();
        assert!(err.to_string().contains("503"), "{err:#}");
    }
}
