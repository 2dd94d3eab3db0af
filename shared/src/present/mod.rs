//! Presentation, pure: what a person sees of a run (the timeline, the outcome's notification, the status page, the
//! approval page and email, the GitHub report), made from the pipeline's state and its report
//! ([`crate::pipeline::OutcomeReport`]). The helpers they share are in [`text`] and [`html`]; no presentation borrows
//! another's (the status page is handed each run's timeline by its use case).

pub mod approval_email;
pub mod approval_page;
pub mod github_report;
pub mod html;
pub mod outcome;
pub mod status;
pub mod text;
pub mod timeline;

#[cfg(test)]
mod tests_test_stage;
#[cfg(test)]
mod tests_verified;
