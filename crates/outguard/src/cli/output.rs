//! Output helpers every CLI verb shares: tables, `--json`, times, and the mapping of store
//! errors to exit codes (`Invalid` is the user's input: exit 64). Human output escapes control
//! characters of stored data (SPEC §9): a stored ESC sequence must not drive the terminal.
//! (`--json` output is escaped by JSON itself.)

use outguard_store::StoreError;
use outguard_types::model::Millis;
use outguard_types::text::escape_control;
use serde::Serialize;

use super::UsageError;

/// `Invalid` is the user's input (exit 64); everything else keeps its message (exit 1).
pub(super) fn user_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Invalid { what } => UsageError(what).into(),
        other => anyhow::Error::new(other),
    }
}

/// A refused management action: bad input is exit 64, an unreachable dependency 69, the rest 1.
pub(super) fn ops_error(e: outguard_admin::ops::OpsError) -> anyhow::Error {
    use outguard_admin::ops::OpsError;
    match e {
        OpsError::Invalid(m) => UsageError(m).into(),
        OpsError::Unavailable(m) => super::Unavailable(m).into(),
        OpsError::Store(e) => user_error(e),
        other => anyhow::Error::new(other),
    }
}

pub(super) fn now_ms() -> Millis {
    outguard_types::time::now_ms()
}

pub(super) fn done<T: Serialize>(json: bool, value: &T, human: &str) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string_pretty(value)?);
    } else {
        // Our own messages may span lines; within each line stored text is escaped.
        for line in human.split('\n') {
            out!("{}", escape_control(line));
        }
    }
    Ok(())
}

/// A list: a JSON array, or an aligned table (header even when empty).
pub(super) fn print_list<T: Serialize>(
    json: bool,
    items: &[T],
    headers: &[&str],
    rows: Vec<Vec<String>>,
) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string_pretty(items)?);
    } else {
        out_text!("{}", table(headers, &rows));
    }
    Ok(())
}

pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape_control(c).into_owned()).collect())
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Unix ms → `YYYY-MM-DD HH:MM:SSZ` (UTC), for tables.
pub(super) fn time(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
