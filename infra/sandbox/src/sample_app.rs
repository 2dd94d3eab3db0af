//! The sample application's task sets, served on loopback so that smoke checks hit a real socket: a blue (original)
//! and a green (replacement) task set, each answering `GET /health`, and the load balancer's production and test
//! listeners, each routed to one of them. The CodeDeploy sandbox reroutes the listeners as a blue/green deployment
//! does: the test listener to green at AllowTestTraffic, production to green once AllowTraffic has shifted all of
//! it, and both back to blue on a rollback.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One task set of the sample app.
#[derive(Debug)]
pub struct TaskSet {
    pub name: String,
    healthy: AtomicBool,
}

impl TaskSet {
    pub fn new(name: &str, healthy: bool) -> Arc<Self> {
        Arc::new(Self { name: name.to_owned(), healthy: AtomicBool::new(healthy) })
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    fn health(&self) -> (u16, String) {
        if self.healthy.load(Ordering::SeqCst) {
            (200, json!({ "status": "ok", "taskSet": self.name }).to_string())
        } else {
            (503, json!({ "status": "unhealthy", "taskSet": self.name }).to_string())
        }
    }
}

/// The task set a listener sends a share of its requests to, and the share in percent.
type Share = Option<(Arc<TaskSet>, u8)>;

/// A listener of the load balancer, on a loopback port, answering for the task set it routes to.
pub struct Listener {
    pub url: String,
    target: Arc<Mutex<Arc<TaskSet>>>,
    /// A share of requests (percent) sent to another task set instead: an ECS-native linear or canary step.
    weighted: Arc<Mutex<Share>>,
    server: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Listener {
    pub async fn serve(target: Arc<TaskSet>) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding a loopback port")?;
        let url = format!("http://{}", listener.local_addr()?);
        let target = Arc::new(Mutex::new(target));
        let weighted: Arc<Mutex<Share>> = Arc::new(Mutex::new(None));
        let routed = Arc::clone(&target);
        let shares = Arc::clone(&weighted);
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (routed, shares, counter) = (Arc::clone(&routed), Arc::clone(&shares), Arc::clone(&counter));
                tokio::spawn(async move {
                    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        let share = shares.lock().unwrap_or_else(PoisonError::into_inner).clone();
                        let task_set = match share {
                            Some((other, percent)) if n % 100 < u64::from(percent) => other,
                            _ => Arc::clone(&routed.lock().unwrap_or_else(PoisonError::into_inner)),
                        };
                        async move {
                            let (status, body) = match request.uri().path() {
                                "/health" => task_set.health(),
                                _ => (404, json!({ "status": "not found" }).to_string()),
                            };
                            let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() =
                                hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(Self { url, target, weighted, server })
    }

    /// Routes the listener to `task_set`.
    pub fn route(&self, task_set: &Arc<TaskSet>) {
        *self.weighted.lock().unwrap_or_else(PoisonError::into_inner) = None;
        *self.target.lock().unwrap_or_else(PoisonError::into_inner) = Arc::clone(task_set);
    }

    /// Sends `percent` of requests to `task_set` and the rest where the listener routes (a weighted target group
    /// pair, as a linear or canary step sets it); 0 takes the share away.
    pub fn share(&self, task_set: &Arc<TaskSet>, percent: u8) {
        *self.weighted.lock().unwrap_or_else(PoisonError::into_inner) =
            (percent > 0).then(|| (Arc::clone(task_set), percent.min(100)));
    }

    /// The task set the listener routes to.
    pub fn routed(&self) -> String {
        self.target.lock().unwrap_or_else(PoisonError::into_inner).name.clone()
    }

    /// Where the listener sends requests, in words: `blue`, or `blue, 20% to green` while a weighted share holds.
    pub fn split(&self) -> String {
        let routed = self.routed();
        match &*self.weighted.lock().unwrap_or_else(PoisonError::into_inner) {
            Some((other, percent)) => format!("{routed}, {percent}% to {}", other.name),
            None => routed,
        }
    }
}

/// The sample app behind its load balancer: blue serving production, green being deployed.
pub struct SampleApp {
    pub blue: Arc<TaskSet>,
    pub green: Arc<TaskSet>,
    pub production: Listener,
    pub test: Listener,
}

impl SampleApp {
    /// Blue healthy; green healthy or not, as the scenario says. Both listeners start on blue.
    pub async fn serve(green_healthy: bool) -> Result<Arc<Self>> {
        let blue = TaskSet::new("blue", true);
        let green = TaskSet::new("green", green_healthy);
        let production = Listener::serve(Arc::clone(&blue)).await?;
        let test = Listener::serve(Arc::clone(&blue)).await?;
        Ok(Arc::new(Self { blue, green, production, test }))
    }
}
