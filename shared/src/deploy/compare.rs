//! A release against what runs at the stage it goes to, for the approver who lets it go there: the image the service
//! runs now and the one it will run, and how the release's task definition differs from the running one (the task's
//! CPU and memory; each container's image, CPU, memory, environment names and ports; containers added or removed).
//! Environment values are never shown, only names: a value may be a secret. Pure, and bounded so that it fits the
//! approval's record.

use std::collections::BTreeSet;

use crate::deploy::TaskDefinition;
use crate::pipeline::{ReleaseComparison, bounded};

/// At most this many differences are listed; the rest are counted.
pub const MAX_CHANGES: usize = crate::pipeline::MAX_COMPARED_CHANGES;
/// A difference is cut to this many bytes.
pub const MAX_CHANGE_BYTES: usize = 200;
/// An image is shown up to this many bytes (ECR's image URIs are far shorter).
pub const MAX_IMAGE_BYTES: usize = crate::pipeline::MAX_COMPARED_TEXT;

/// What of a task definition an approver compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskShape {
    /// The task's CPU units and memory in MiB, as ECS registers them (`"1 vCPU"` is `"1024"`, `"2 GB"` is
    /// `"2048"`).
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub containers: Vec<ContainerShape>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerShape {
    pub name: String,
    pub image: String,
    /// CPU units reserved for the container (ECS reports an unset value as 0, which is read as unset).
    pub cpu: Option<i32>,
    /// The container's hard memory limit, MiB.
    pub memory: Option<i32>,
    /// The names of its environment variables and secrets.
    pub environment: BTreeSet<String>,
    /// Its container ports, as `8080/tcp`.
    pub ports: BTreeSet<String>,
}

impl TaskShape {
    /// The shape of a task definition as a build's `taskdef.json` writes it, rendered with the release's image.
    pub fn of(definition: &TaskDefinition) -> Self {
        let containers = definition
            .container_definitions
            .iter()
            .map(|container| ContainerShape {
                name: container.name.clone(),
                image: container.image.clone(),
                cpu: container.cpu.filter(|cpu| *cpu != 0),
                memory: container.memory,
                environment: container
                    .environment
                    .iter()
                    .map(|pair| pair.name.clone())
                    .chain(container.secrets.iter().map(|secret| secret.name.clone()))
                    .collect(),
                ports: container
                    .port_mappings
                    .iter()
                    .map(|port| port_name(port.container_port, port.protocol.as_deref()))
                    .collect(),
            })
            .collect();
        Self {
            cpu: definition.cpu.as_deref().map(|cpu| in_units(cpu, "vcpu")),
            memory: definition.memory.as_deref().map(|memory| in_units(memory, "gb")),
            containers,
        }
    }
}

/// A task's CPU or memory as ECS registers it: `"1 vCPU"` (or `"1vcpu"`) as `"1024"` CPU units, `"2 GB"` as `"2048"`
/// MiB; a number as it is
/// (<https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html>).
pub fn in_units(value: &str, unit: &str) -> String {
    let value = value.trim();
    let lower = value.to_ascii_lowercase();
    let scaled = lower.strip_suffix(unit).and_then(|number| number.trim().parse::<f64>().ok());
    match scaled {
        Some(number) if number.is_finite() && number > 0.0 => format!("{}", (number * 1024.0).round()),
        _ => value.to_owned(),
    }
}

/// A task definition as people name it, `family:revision`, from its ARN.
pub fn short_name(arn: &str) -> &str {
    arn.rsplit_once('/').map_or(arn, |(_, name)| name)
}

/// A container port as shown: `8080/tcp` (ECS's default protocol is tcp).
pub fn port_name(port: i32, protocol: Option<&str>) -> String {
    format!("{port}/{}", protocol.unwrap_or("tcp").to_ascii_lowercase())
}

/// The release (its task definition's `new` shape, deploying `image`) against `running`, the task definition the
/// stage's service runs now (`family:revision`) and its shape.
pub fn compare(running: (&str, &TaskShape), new: &TaskShape, image: &str) -> ReleaseComparison {
    let (name, old) = running;
    // The deployed container: the one the release's image goes into.
    let deployed = new.containers.iter().find(|container| container.image == image).map(|c| c.name.as_str());
    let running_image = deployed
        .and_then(|name| old.containers.iter().find(|c| c.name == name))
        .map(|c| bounded(&c.image, MAX_IMAGE_BYTES));
    let mut changes = Vec::new();
    if old.cpu != new.cpu {
        changes.push(format!("task CPU {} -> {}", or_unset(old.cpu.as_deref()), or_unset(new.cpu.as_deref())));
    }
    if old.memory != new.memory {
        changes.push(format!("task memory {} -> {}", or_unset(old.memory.as_deref()), or_unset(new.memory.as_deref())));
    }
    for container in &new.containers {
        match old.containers.iter().find(|c| c.name == container.name) {
            None => changes.push(format!("container {} added", container.name)),
            Some(before) => changes.extend(container_changes(before, container, Some(&*container.name) == deployed)),
        }
    }
    for gone in old.containers.iter().filter(|c| !new.containers.iter().any(|n| n.name == c.name)) {
        changes.push(format!("container {} removed", gone.name));
    }
    ReleaseComparison {
        running: Some(bounded(name, MAX_CHANGE_BYTES)),
        running_image,
        image: bounded(image, MAX_IMAGE_BYTES),
        changes: at_most(changes),
        unread: None,
    }
}

/// The release when what runs at its stage could not be read, and why.
pub fn unread(image: &str, why: &str) -> ReleaseComparison {
    ReleaseComparison {
        running: None,
        running_image: None,
        image: bounded(image, MAX_IMAGE_BYTES),
        changes: Vec::new(),
        unread: Some(bounded(why, MAX_CHANGE_BYTES)),
    }
}

/// How one container differs. The deployed container's image is shown beside the running one, not here.
fn container_changes(old: &ContainerShape, new: &ContainerShape, deployed: bool) -> Vec<String> {
    let name = &new.name;
    let mut changes = Vec::new();
    if !deployed && old.image != new.image {
        changes.push(format!("{name}: image {} -> {}", old.image, new.image));
    }
    if old.cpu != new.cpu {
        changes.push(format!("{name}: CPU {} -> {}", or_unset(old.cpu), or_unset(new.cpu)));
    }
    if old.memory != new.memory {
        changes.push(format!("{name}: memory {} -> {}", or_unset(old.memory), or_unset(new.memory)));
    }
    if let Some(difference) = set_difference(&old.environment, &new.environment) {
        changes.push(format!("{name}: environment {difference}"));
    }
    if let Some(difference) = set_difference(&old.ports, &new.ports) {
        changes.push(format!("{name}: ports {difference}"));
    }
    changes
}

/// `+ADDED -REMOVED`, or `None` when the sets are equal.
fn set_difference(old: &BTreeSet<String>, new: &BTreeSet<String>) -> Option<String> {
    let added = new.difference(old).map(|name| format!("+{name}"));
    let removed = old.difference(new).map(|name| format!("-{name}"));
    let words: Vec<String> = added.chain(removed).collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn or_unset(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "unset".to_owned(), |value| value.to_string())
}

/// At most [`MAX_CHANGES`] lines of at most [`MAX_CHANGE_BYTES`] bytes, the last saying how many more there are.
fn at_most(changes: Vec<String>) -> Vec<String> {
    let total = changes.len();
    let mut lines: Vec<String> = changes.iter().take(MAX_CHANGES).map(|line| bounded(line, MAX_CHANGE_BYTES)).collect();
    if total > MAX_CHANGES {
        lines.truncate(MAX_CHANGES - 1);
        lines.push(format!("and {} more", total - (MAX_CHANGES - 1)));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, image: &str) -> ContainerShape {
        ContainerShape { name: name.into(), image: image.into(), ..ContainerShape::default() }
    }

    fn names(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    const OLD: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:aaaa";
    const NEW: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:bbbb";

    fn running() -> TaskShape {
        let mut web = container("web", OLD);
        web.environment = names(&["LOG_LEVEL", "OLD_FLAG"]);
        web.ports = names(&["8080/tcp"]);
        web.memory = Some(512);
        TaskShape {
            cpu: Some("256".into()),
            memory: Some("512".into()),
            containers: vec![web, container("proxy", "envoy:1.30"), container("gone", "busybox")],
        }
    }

    #[test]
    fn the_comparison_shows_the_running_image_and_each_difference_of_the_new_task_definition() {
        let mut new = running();
        new.cpu = Some("512".into());
        new.memory = Some("1024".into());
        new.containers[0].image = NEW.into();
        new.containers[0].memory = Some(1024);
        new.containers[0].environment = names(&["LOG_LEVEL", "FEATURE_X"]);
        new.containers[0].ports = names(&["8080/tcp", "9090/udp"]);
        new.containers[1].image = "envoy:1.31".into();
        new.containers[2] = container("metrics", "otel:0.9");

        let compared = compare(("web:41", &running()), &new, NEW);

        assert_eq!(compared.running.as_deref(), Some("web:41"));
        assert_eq!(compared.running_image.as_deref(), Some(OLD));
        assert_eq!(compared.image, NEW);
        assert_eq!(
            compared.changes,
            [
                "task CPU 256 -> 512",
                "task memory 512 -> 1024",
                "web: memory 512 -> 1024",
                "web: environment +FEATURE_X -OLD_FLAG",
                "web: ports +9090/udp",
                "proxy: image envoy:1.30 -> envoy:1.31",
                "container metrics added",
                "container gone removed",
            ]
        );
        assert_eq!(compared.unread, None);
    }

    #[test]
    fn a_release_that_changes_only_the_image_lists_no_difference() {
        let mut new = running();
        new.containers[0].image = NEW.into();

        let compared = compare(("web:41", &running()), &new, NEW);

        assert!(compared.changes.is_empty(), "{:?}", compared.changes);
        assert_eq!(compared.running_image.as_deref(), Some(OLD));
    }

    #[test]
    fn a_long_list_of_differences_is_cut_to_its_bound_and_says_how_many_more() {
        let mut new = running();
        new.containers[0].image = NEW.into();
        new.containers.extend((0..20).map(|n| container(&format!("extra-{n}"), "busybox")));
        new.containers[0].environment = (0..200).map(|n| format!("VARIABLE_WITH_A_LONG_NAME_{n}")).collect();

        let compared = compare(("web:41", &running()), &new, NEW);

        assert_eq!(compared.changes.len(), MAX_CHANGES);
        assert_eq!(compared.changes.last().map(String::as_str), Some("and 12 more"));
        assert!(compared.changes.iter().all(|line| line.len() <= MAX_CHANGE_BYTES));
        assert!(compared.changes[0].ends_with('…'), "{}", compared.changes[0]);
    }

    #[test]
    fn environment_values_are_never_shown_only_their_names() {
        let text = br#"{"family":"web","containerDefinitions":[{"name":"web","image":"<IMAGE1_NAME>",
            "environment":[{"name":"API_TOKEN","value":"s3cr3t-value"}],
            "secrets":[{"name":"DB_PASSWORD","valueFrom":"arn:aws:secretsmanager:us-east-1:1:secret:db"}]}]}"#;
        let definition = crate::deploy::task_definition(text, NEW, None, false).expect("renders");

        let compared = compare(("web:41", &running()), &TaskShape::of(&definition), NEW);

        let shown = format!("{compared:?}");
        assert!(shown.contains("+API_TOKEN") && shown.contains("+DB_PASSWORD"), "{shown}");
        assert!(!shown.contains("s3cr3t-value") && !shown.contains("secretsmanager"), "{shown}");
    }

    #[test]
    fn a_taskdef_in_vcpus_and_gigabytes_compares_equal_to_the_units_ecs_registered_it_as() {
        let text = br#"{"family":"web","cpu":"1 vCPU","memory":"2 GB",
            "containerDefinitions":[{"name":"web","image":"<IMAGE1_NAME>","cpu":0}]}"#;
        let definition = crate::deploy::task_definition(text, NEW, None, false).expect("renders");
        let new = TaskShape::of(&definition);
        let registered = TaskShape {
            cpu: Some("1024".into()),
            memory: Some("2048".into()),
            containers: vec![container("web", OLD)],
        };

        let compared = compare(("web:41", &registered), &new, NEW);

        assert!(compared.changes.is_empty(), "{:?}", compared.changes);
        assert_eq!(new.containers[0].cpu, None, "a container CPU of 0 is unset");
        let units: Vec<String> =
            [("0.25 vCPU", "vcpu"), ("4vcpu", "vcpu"), ("512", "vcpu"), ("0.5GB", "gb"), ("lots", "gb")]
                .iter()
                .map(|(value, unit)| in_units(value, unit))
                .collect();
        assert_eq!(units, ["256", "4096", "512", "512", "lots"]);
    }

    #[test]
    fn a_port_is_shown_with_its_protocol_tcp_unless_said() {
        assert_eq!(port_name(8080, None), "8080/tcp");
        assert_eq!(port_name(53, Some("UDP")), "53/udp");
    }

    #[test]
    fn a_comparison_that_could_not_read_the_service_says_why() {
        let compared = unread(NEW, "ECS has no active service web in cluster prod");

        assert_eq!(compared.running, None);
        assert_eq!(compared.unread.as_deref(), Some("ECS has no active service web in cluster prod"));
    }
}
