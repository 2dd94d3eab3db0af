//! The README's map of sluice's functions ("How it fits together"), read as a table, so that the tests that hold it
//! to `template.yaml` and to the code, and the demo that holds it to what the functions publish, read it alike.

use anyhow::{Context, Result, bail};

use crate::meter::Published;

/// A row of the map.
#[derive(Debug)]
pub struct MapRow {
    /// The function's logical id in `template.yaml`.
    pub function: String,
    pub binary: String,
    /// What wakes it, as written (detail-types in backticks).
    pub woken_by: String,
    /// The effect kinds it owns.
    pub effects: Vec<String>,
    /// The detail-types of the events it puts on the bus.
    pub publishes: Vec<String>,
}

/// The map's rows, backticks taken off the names.
pub fn readme_map() -> Result<Vec<MapRow>> {
    let readme = std::fs::read_to_string(crate::workspace_root().join("README.md"))?;
    let section = readme.split("## How it fits together\n").nth(1).context("the README has no map")?;
    let section = section.split("\n#").next().unwrap_or_default();
    let names = |cell: &str| -> Vec<String> {
        cell.split(',').map(|name| name.trim().trim_matches('`').to_owned()).filter(|name| !name.is_empty()).collect()
    };
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let [function, binary, woken_by, _use_cases, effects, publishes] = cells[..] else {
                bail!("a row of the map has {} cells, not 6: {line}", cells.len());
            };
            Ok(MapRow {
                function: function.trim_matches('`').to_owned(),
                binary: binary.trim_matches('`').to_owned(),
                woken_by: woken_by.to_owned(),
                effects: names(effects),
                // the backticked names: the cell may say "none" in words
                publishes: publishes.split('`').skip(1).step_by(2).map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// Each event a function was seen putting on the bus is one its row of the map says it publishes.
pub fn holds_to_published(published: &Published) -> Result<()> {
    if published.is_empty() {
        bail!("no function was seen putting an event on the bus: the meter attributes none");
    }
    let map = readme_map()?;
    for (function, kinds) in published {
        let row = map
            .iter()
            .find(|row| &row.function == function)
            .with_context(|| format!("{function} put {kinds:?} on the bus, and the README's map has no row for it"))?;
        let unlisted: Vec<&String> = kinds.iter().filter(|kind| !row.publishes.contains(kind)).collect();
        if !unlisted.is_empty() {
            bail!("{function} put {unlisted:?} on the bus, which its row of the README's map does not list");
        }
    }
    Ok(())
}
