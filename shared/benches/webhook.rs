//! The webhook's own work on a delivery, without I/O: verify the signature, parse the push, find the pipelines it
//! starts. `cargo bench -p sluice --bench webhook` prints the figures the README quotes.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::SecretString;
use sluice::definitions::Definitions;
use sluice::github::webhook::{PushEvent, WebhookSecrets, sign, verify_signature};

const PUSH: &[u8] = include_bytes!("../tests/fixtures/github-push.json");
const EXAMPLE: &str = include_str!("../../infra/pipelines.example.toml");

fn matching(definitions: &Definitions, push: &PushEvent) -> usize {
    definitions
        .for_repository(&push.repository.full_name)
        .filter(|p| p.source.accepts_ref(&push.git_ref, &push.repository.default_branch))
        .filter(|p| p.source.accepts_files(push.changed_files()))
        .count()
}

fn webhook(c: &mut Criterion) {
    let secrets = WebhookSecrets::new([SecretString::from("current"), SecretString::from("previous")]);
    let signature = sign("current", PUSH);
    let now = chrono::Utc::now();
    let definitions = Definitions::parse("example", EXAMPLE).expect("valid");
    let push = PushEvent::parse(PUSH).expect("parses");
    assert_eq!(matching(&definitions, &push), 1);

    c.bench_function("verify signature (2 secrets, 4 KB push)", |b| {
        b.iter(|| verify_signature(black_box(&secrets), black_box(PUSH), Some(&signature), now))
    });
    c.bench_function("parse push payload", |b| b.iter(|| PushEvent::parse(black_box(PUSH))));
    c.bench_function("match pipelines (filters)", |b| b.iter(|| matching(black_box(&definitions), black_box(&push))));
    c.bench_function("verify + parse + match", |b| {
        b.iter(|| {
            verify_signature(&secrets, black_box(PUSH), Some(&signature), now).ok()?;
            let push = PushEvent::parse(black_box(PUSH)).ok()?;
            Some(matching(&definitions, &push))
        })
    });
    c.bench_function("parse pipeline definitions (cold start)", |b| {
        b.iter(|| Definitions::parse("example", black_box(EXAMPLE)))
    });
}

criterion_group!(benches, webhook);
criterion_main!(benches);
