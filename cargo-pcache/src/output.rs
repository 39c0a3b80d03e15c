//! Tables, colours, progress and sizes.

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use crate::cli::ColorWhen;

/// How to write: colours on or off, quiet or not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) color: bool,
    pub(crate) quiet: bool,
    pub(crate) verbose: bool,
    /// Progress bars: only on a terminal, never when quiet.
    pub(crate) progress: bool,
}

impl Style {
    pub(crate) fn new(when: ColorWhen, quiet: bool, verbose: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match when {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => !no_color && std::io::stdout().is_terminal(),
        };
        Style {
            color,
            quiet,
            verbose,
            progress: !quiet && std::io::stderr().is_terminal(),
        }
    }

    pub(crate) fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub(crate) fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }

    pub(crate) fn red(&self, text: &str) -> String {
        self.paint("1;31", text)
    }

    pub(crate) fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// A progress bar on stderr over `total` items, hidden unless
    /// [`progress`](Style::progress).
    pub(crate) fn progress_bar(&self, total: u64, what: &'static str) -> indicatif::ProgressBar {
        if !self.progress || total == 0 {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} entries")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what);
        bar
    }
}

/// Writes rows as aligned columns: the first row is the header.
/// Columns listed in `right` are right-aligned (numbers).
pub(crate) fn table(
    out: &mut dyn Write,
    style: &Style,
    rows: &[Vec<String>],
    right: &[usize],
) -> std::io::Result<()> {
    let Some(columns) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for (r, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            let last = i + 1 == row.len();
            let cell = if r == 0 {
                style.bold(cell)
            } else {
                cell.clone()
            };
            if right.contains(&i) {
                line.push_str(&" ".repeat(pad));
                line.push_str(&cell);
            } else {
                line.push_str(&cell);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if !last {
                line.push_str("  ");
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A cache name as shown in a table: one line, at most 48 characters.
pub(crate) fn display_name(name: &str) -> String {
    const MAX: usize = 48;
    if name.is_empty() {
        return "\"\"".to_owned();
    }
    let mut shown: String = name
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if name.chars().nth(MAX).is_some() {
        shown.push('…');
    }
    shown
}

pub(crate) fn size(bytes: u64) -> String {
    pcache_core::format_size(bytes)
}

/// How long ago `then` was, compactly: `45s`, `3h12m`, `4d`.
pub(crate) fn age(now: SystemTime, then: SystemTime) -> String {
    let age = now.duration_since(then).unwrap_or(Duration::ZERO);
    pcache_core::format_duration(Duration::from_secs(age.as_secs()))
}

pub(crate) fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_right_justify_numbers() {
        let style = Style {
            color: false,
            quiet: false,
            verbose: false,
            progress: false,
        };
        let rows = vec![
            vec!["NAME".to_owned(), "SIZE".to_owned()],
            vec!["a".to_owned(), "1.0 KiB".to_owned()],
            vec!["longer".to_owned(), "5 B".to_owned()],
        ];
        let mut out = Vec::new();
        table(&mut out, &style, &rows, &[1]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME       SIZE\na       1.0 KiB\nlonger      5 B\n"
        );
    }

    #[test]
    fn names_are_one_short_line() {
        assert_eq!(display_name(""), "\"\"");
        assert_eq!(display_name("a\nb"), "a b");
        assert_eq!(display_name(&"x".repeat(100)).chars().count(), 49);
    }
}
