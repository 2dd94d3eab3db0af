//! The functions started as `template.yaml` wires them: each rule's queue feeds the function its target names, so
//! that no test and no demo routes an event to a function by hand, and a rule added to the template reaches its
//! function in every test that starts it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sluice_sandbox::pump::{Pump, pump};

use crate::Stack;

/// What a function does with one event a rule routes to it, as the harness starts it; an error leaves the event to
/// be delivered again, as Lambda's retries would.
pub type Handler = Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// `handle` as a [`Handler`].
pub fn handler<H, F, E>(handle: H) -> Handler
where
    H: Fn(Value) -> F + Send + Sync + 'static,
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    Arc::new(move |event| {
        let done = handle(event);
        Box::pin(async move { done.await.map_err(|error| error.to_string()) })
    })
}

/// One rule of `template.yaml`, as the stack routes it: the function its target names and the detail-types it
/// matches.
#[derive(Debug, Clone)]
pub struct Route {
    pub rule: String,
    pub function: String,
    pub detail_types: Vec<String>,
}

impl Stack {
    /// Feeds each of `functions` (by its logical id in `template.yaml`) every event a rule of the template routes to
    /// it. A function no rule targets is an error: the template does not wake it so.
    pub fn wire(&self, functions: Vec<(&str, Handler)>) -> Result<Vec<Pump>> {
        let mut pumps = Vec::new();
        for (function, handle) in functions {
            let rules = self.rules_to(function);
            if rules.is_empty() {
                bail!("template.yaml routes no event to {function}");
            }
            for rule in rules {
                let handle = Arc::clone(&handle);
                let queue = self.queue(rule)?.to_owned();
                pumps.push(pump(self.sqs.clone(), queue, move |event: Value| (*handle)(event)));
            }
        }
        Ok(pumps)
    }

    /// The rules of `template.yaml` whose target is `function`.
    pub fn rules_to(&self, function: &str) -> Vec<&str> {
        self.routes.iter().filter(|route| route.function == function).map(|route| route.rule.as_str()).collect()
    }

    /// The queue behind the rule that routes `detail_type` to `function` (to see what reaches it, in a test that
    /// does not start it). It holds whatever else that rule routes to the function too.
    pub fn queue_to(&self, function: &str, detail_type: &str) -> Result<&str> {
        let route = self
            .routes
            .iter()
            .find(|route| route.function == function && route.detail_types.iter().any(|kind| kind == detail_type))
            .with_context(|| format!("template.yaml routes no {detail_type:?} to {function}"))?;
        self.queue(&route.rule)
    }
}
