//! What a person at a terminal sees: colours (anstyle, written through anstream, which keeps them only where each
//! stream is a terminal and `NO_COLOR`, `CLICOLOR`, `CLICOLOR_FORCE` and `TERM` allow), the `--wait` spinner
//! (indicatif), and errors.

use std::io::IsTerminal;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use sluice::pipeline::Status;

/// `text` in the colour of `status`: green shipped, red failed or rolled back, yellow in progress.
pub fn paint(status: Status, text: &str) -> String {
    let colour = match status {
        Status::Succeeded => Style::new().fg_color(Some(AnsiColor::Green.into())),
        Status::Failed | Status::RolledBack | Status::TimedOut | Status::Rejected => {
            Style::new().fg_color(Some(AnsiColor::Red.into()))
        }
        Status::Waiting(_) | Status::Running(_) => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Status::Superseded | Status::Skipped => Style::new().dimmed(),
    };
    format!("{colour}{text}{colour:#}")
}

pub fn bold(text: &str) -> String {
    let bold = Style::new().bold();
    format!("{bold}{text}{bold:#}")
}

/// ok / warning / problem, as `doctor` marks its lines.
pub fn mark(word: &str, colour: AnsiColor) -> String {
    let style = Style::new().fg_color(Some(colour.into())).bold();
    format!("{style}{word}{style:#}")
}

/// A failed command's error, once, with its causes: `reading run web-1: the pipeline store ...: ...`; as
/// `{"ok": false, "error": "..."}` with `--json`, on stderr too: stdout holds answers only.
pub fn error(error: &anyhow::Error, json: bool) {
    let mut said: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        // An SDK error says its cause again in its own words ("service error", then the service's): keep one.
        if said.iter().any(|before| before.ends_with(&text)) || text == "service error" || text == "dispatch failure" {
            continue;
        }
        said.push(text);
    }
    let message = said.join(": ");
    if json {
        eprintln!("{}", serde_json::json!({ "ok": false, "error": message }));
    } else {
        anstream::eprintln!("{} {message}", mark("error:", AnsiColor::Red));
    }
}

/// The `--wait` spinner on stderr: the run's step and how long it has waited, redrawn in place and cleared when
/// done; nothing at all when stderr is not a terminal.
pub struct Progress(indicatif::ProgressBar);

impl Progress {
    pub fn start(line: String) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::hidden()
        };
        // The message is cut to the terminal's width, so that the line redrawn is always one line.
        let style = indicatif::ProgressStyle::with_template("  {spinner} {elapsed:>3} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
        bar.set_style(style);
        bar.set_message(line);
        // Cleared however the wait ends, an error included.
        let bar = bar.with_finish(indicatif::ProgressFinish::AndClear);
        bar.enable_steady_tick(Duration::from_millis(100));
        Self(bar)
    }

    /// What the spinner says.
    pub fn say(&self, line: String) {
        self.0.set_message(line);
    }

    /// Prints `line` on stdout above the spinner.
    pub fn println(&self, line: &str) {
        self.0.suspend(|| anstream::println!("{line}"));
    }

    pub fn clear(self) {
        self.0.finish_and_clear();
    }
}
