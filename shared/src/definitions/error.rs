//! Errors in a definitions file, each pointing at a pipeline, a field and a line.

use std::fmt;

/// One thing wrong with a definitions file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    /// The file (as named by the caller).
    pub origin: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The pipeline the error is in, when it is in one.
    pub pipeline: Option<String>,
    /// The field, as a dotted path within the pipeline (`source.repository`), or empty.
    pub field: String,
    pub message: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        match (&self.pipeline, self.field.is_empty()) {
            (Some(pipeline), false) => write!(f, "pipeline `{pipeline}`, field `{}`: ", self.field)?,
            (Some(pipeline), true) => write!(f, "pipeline `{pipeline}`: ")?,
            (None, false) => write!(f, "field `{}`: ", self.field)?,
            (None, true) => {}
        }
        f.write_str(&self.message)
    }
}

/// Everything wrong with a definitions file, in the order of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionErrors(pub Vec<DefinitionError>);

impl fmt::Display for DefinitionErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DefinitionErrors {}

/// The 1-based line and column of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Where each line of a text starts: the place of an error found by a binary search, not by scanning the text
/// again for each of many errors.
pub(super) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { starts }
    }

    /// The 1-based line and column (in characters) of byte `offset` in `text`, the text this index was made of.
    pub(super) fn line_column(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line = self.starts.partition_point(|&start| start <= offset).max(1);
        let start = self.starts[line - 1];
        (line, text[start..offset].chars().count() + 1)
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// For an error the TOML parser found at `offset`: the pipeline and field it is in, read from the nearest table
/// header above it (`[pipelines.web.source]`) and the key on its line (`repository = ...`).
pub(super) fn place_of(text: &str, offset: usize) -> (Option<String>, String) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let header = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .chain(std::iter::once(line).filter(|l| l.starts_with('[')))
        .find(|l| l.starts_with('['));
    let mut path: Vec<String> = header.map(header_path).unwrap_or_default();
    if line.starts_with('[') {
        path = header_path(line);
    } else if let Some((key, _)) = line.split_once('=') {
        path.extend(key.split('.').map(|k| unquote(k.trim())));
    }
    match path.first().map(String::as_str) {
        Some("pipelines") if path.len() >= 2 => (Some(path[1].clone()), path[2..].join(".")),
        _ => (None, path.join(".")),
    }
}

fn header_path(header: &str) -> Vec<String> {
    let inner = header.trim_start_matches('[').split(']').next().unwrap_or("");
    inner.split('.').map(|k| unquote(k.trim())).filter(|k| !k.is_empty()).collect()
}

fn unquote(key: &str) -> String {
    key.trim_matches(|c| c == '"' || c == '\'').to_owned()
}
