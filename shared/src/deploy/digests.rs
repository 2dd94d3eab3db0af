//! What runs is what was built: once ECS reports a deployment complete, the service's running tasks of the task
//! definition sluice registered for the release (ListTasks, DescribeTasks: each container's `imageDigest`,
//! <https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Container.html>) are judged against the release's
//! image digest. A tag can roll out another image than the one built; a digest cannot, unless the task definition
//! was not the one rendered. Pure: the deploy-events function reads the tasks, the state machine judges them here.

use serde::{Deserialize, Serialize};

/// How many of the tasks that run another image a check names (the count says how many in all).
pub const MAX_NAMED: usize = 5;

/// One task a service runs, as DescribeTasks describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningTask {
    pub task_arn: String,
    /// Its `taskDefinitionArn`.
    pub task_definition: String,
    pub containers: Vec<RunningContainer>,
}

/// One container of a running task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningContainer {
    pub name: String,
    /// Its `image`, as the task definition names it (`repo@sha256:...` or `repo:tag`).
    pub image: String,
    /// Its `imageDigest`: what ECS resolved and pulled; absent until the image is pulled.
    pub digest: Option<String>,
}

/// What the check found, kept on the deploy stage's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestCheck {
    /// The release's digest (`sha256:...`).
    pub digest: String,
    /// The tasks of the new task definition that run it.
    pub tasks: u32,
    /// The tasks of the new task definition whose containers had not reported a digest yet.
    #[serde(default)]
    pub unknown: u32,
    /// How many tasks of the new task definition run another image.
    #[serde(default)]
    pub others: u32,
    /// The first of those, each as "task 0a1b2c3d4e5f (web) runs sha256:...", at most [`MAX_NAMED`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named: Vec<String>,
}

impl DigestCheck {
    /// Whether every task of the new task definition runs the release's image (or has not said yet).
    pub fn passed(&self) -> bool {
        self.others == 0
    }

    /// A line for the timeline: "3 tasks run sha256:ab12cd34ef56…", or what runs instead.
    pub fn summary(&self) -> String {
        let digest = short(&self.digest);
        let unknown = match self.unknown {
            0 => String::new(),
            1 => ", 1 had not reported its digest yet".to_owned(),
            n => format!(", {n} had not reported their digest yet"),
        };
        if self.passed() {
            return match self.tasks + self.unknown {
                0 => "no task of the new task definition was running to check".to_owned(),
                _ => format!("{} {digest}{unknown}", tasks(self.tasks, "runs", "run")),
            };
        }
        let all = self.tasks + self.unknown + self.others;
        let verb = if self.others == 1 { "runs" } else { "run" };
        format!(
            "{} of {all} tasks {verb} another image than the release's {digest}: {}",
            self.others,
            self.named.join("; ")
        )
    }
}

fn tasks(n: u32, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 task {one}"),
        n => format!("{n} tasks {many}"),
    }
}

/// `sha256:` and the first 12 hex digits of a digest, for a line.
pub fn short(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) if hex.len() > 12 => format!("{algorithm}:{}…", &hex[..12]),
        _ => digest.to_owned(),
    }
}

/// The repository an image reference names, without its digest or tag (a registry's port is kept).
fn repository(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(repository, _)| repository);
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].find(':') {
        Some(colon) => &image[..name_start + colon],
        None => image,
    }
}

/// Judges the `tasks` of `task_definition` (the one sluice registered for the release) against `image_uri`, the
/// release's image: each such task's containers of the release's repository must run its digest. `None` when the
/// release names its image by tag, with no digest to compare.
pub fn judge(image_uri: &str, task_definition: &str, tasks: &[RunningTask]) -> Option<DigestCheck> {
    let (_, digest) = image_uri.split_once('@')?;
    let wanted = repository(image_uri);
    let mut check = DigestCheck { digest: digest.to_owned(), tasks: 0, unknown: 0, others: 0, named: Vec::new() };
    for task in tasks.iter().filter(|task| task.task_definition == task_definition) {
        let ours: Vec<&RunningContainer> = task.containers.iter().filter(|c| repository(&c.image) == wanted).collect();
        let other = ours.iter().find(|c| c.digest.as_deref().is_some_and(|d| d != digest));
        let id = task.task_arn.rsplit('/').next().unwrap_or(&task.task_arn);
        let named = match (other, ours.is_empty()) {
            (Some(container), _) => {
                format!("task {id} ({}) runs {}", container.name, short(container.digest.as_deref().unwrap_or("")))
            }
            (None, true) => format!("task {id} runs no image of {wanted}"),
            (None, false) if ours.iter().any(|c| c.digest.is_none()) => {
                check.unknown += 1;
                continue;
            }
            (None, false) => {
                check.tasks += 1;
                continue;
            }
        };
        check.others += 1;
        if check.named.len() < MAX_NAMED {
            check.named.push(named);
        }
    }
    Some(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web";
    const BUILT: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const OTHER: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    const OURS: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8";

    fn task(n: u32, task_definition: &str, containers: &[(&str, &str, Option<&str>)]) -> RunningTask {
        RunningTask {
            task_arn: format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{n:032x}"),
            task_definition: task_definition.to_owned(),
            containers: containers
                .iter()
                .map(|(name, image, digest)| RunningContainer {
                    name: (*name).to_owned(),
                    image: (*image).to_owned(),
                    digest: digest.map(str::to_owned),
                })
                .collect(),
        }
    }

    fn release() -> String {
        format!("{REPO}@{BUILT}")
    }

    #[test]
    fn tasks_of_the_new_task_definition_running_the_release_pass_and_say_how_many() {
        let sidecar = ("envoy", "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29", Some(OTHER));
        let tasks = [
            task(1, OURS, &[("web", &release(), Some(BUILT)), sidecar]),
            task(2, OURS, &[("web", &release(), Some(BUILT))]),
            task(3, OURS, &[("web", &release(), Some(BUILT))]),
            // The task definition the service ran before, still draining: not judged.
            task(4, "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7", &[("web", REPO, Some(OTHER))]),
        ];
        let check = judge(&release(), OURS, &tasks).expect("a digest to compare");
        assert!(check.passed());
        assert_eq!(check.summary(), "3 tasks run sha256:9f86d081884c…");
    }

    #[test]
    fn a_task_running_another_digest_of_the_repository_fails_the_check_naming_it() {
        // The task definition names the image by tag, and the tag now points elsewhere.
        let tasks = [
            task(1, OURS, &[("web", &format!("{REPO}:latest"), Some(BUILT))]),
            task(2, OURS, &[("web", &format!("{REPO}:latest"), Some(OTHER))]),
        ];
        let check = judge(&release(), OURS, &tasks).expect("a digest to compare");
        assert!(!check.passed());
        assert_eq!(
            check.summary(),
            "1 of 2 tasks runs another image than the release's sha256:9f86d081884c…: task \
             00000000000000000000000000000002 (web) runs sha256:2c26b46b68ff…"
        );
    }

    #[test]
    fn a_task_with_no_container_of_the_release_repository_runs_another_image() {
        let tasks = [task(7, OURS, &[("web", "docker.io/library/nginx:1.27", Some(OTHER))])];
        let check = judge(&release(), OURS, &tasks).expect("a digest to compare");
        assert_eq!((check.others, check.named[0].ends_with(&format!("runs no image of {REPO}"))), (1, true));
    }

    #[test]
    fn a_container_that_has_not_reported_its_digest_neither_passes_nor_fails_it() {
        let tasks = [task(1, OURS, &[("web", &release(), Some(BUILT))]), task(2, OURS, &[("web", &release(), None)])];
        let check = judge(&release(), OURS, &tasks).expect("a digest to compare");
        assert!(check.passed());
        assert_eq!(check.summary(), "1 task runs sha256:9f86d081884c…, 1 had not reported its digest yet");
    }

    #[test]
    fn a_release_named_by_tag_has_no_digest_to_compare() {
        assert_eq!(judge(&format!("{REPO}:v1"), OURS, &[]), None);
    }

    #[test]
    fn the_named_tasks_are_bounded_and_the_count_says_how_many() {
        let tasks: Vec<RunningTask> = (0..40).map(|n| task(n, OURS, &[("web", REPO, Some(OTHER))])).collect();
        let check = judge(&release(), OURS, &tasks).expect("a digest to compare");
        assert_eq!((check.others, check.named.len()), (40, MAX_NAMED));
    }

    #[test]
    fn a_registry_port_is_part_of_the_repository() {
        assert_eq!(repository("localhost:5000/web:v1"), "localhost:5000/web");
        assert_eq!(repository("localhost:5000/web@sha256:ab"), "localhost:5000/web");
        assert_eq!(repository("web"), "web");
    }
}
