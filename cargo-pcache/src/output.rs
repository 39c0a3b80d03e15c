//! Tables, colours, progress and sizes, written to the streams `run` is
//! given.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use pcache_core::conventions;

use crate::cli::ColorWhen;

/// How to write: colours on or off (per stream), quiet or not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// Colours in results (stdout).
    pub(crate) color: bool,
    /// Colours in messages (stderr).
    pub(crate) color_err: bool,
    pub(crate) quiet: bool,
    pub(crate) verbose: bool,
    /// Progress bars: only on a terminal, never when quiet.
    pub(crate) progress: bool,
}

/// A colour or emphasis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paint {
    Bold,
    Yellow,
    Red,
    Green,
    Dim,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Paint::Bold => "1",
            Paint::Yellow => "33",
            Paint::Red => "1;31",
            Paint::Green => "32",
            Paint::Dim => "2",
        }
    }
}

impl Style {
    /// `stdout_tty` and `stderr_tty` say whether the streams `run` writes
    /// to are terminals; `no_color`, whether `NO_COLOR` is set (it turns
    /// `auto` off).
    pub(crate) fn new(
        when: ColorWhen,
        no_color: bool,
        quiet: bool,
        verbose: bool,
        stdout_tty: bool,
        stderr_tty: bool,
    ) -> Style {
        let color_for = |tty: bool| match when {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => !no_color && tty,
        };
        Style {
            color: color_for(stdout_tty),
            color_err: color_for(stderr_tty),
            quiet,
            verbose,
            progress: !quiet && stderr_tty,
        }
    }

    /// `text` painted for stdout.
    pub(crate) fn paint(&self, paint: Paint, text: &str) -> String {
        paint_if(self.color, paint, text)
    }

    /// `text` painted for stderr.
    pub(crate) fn paint_err(&self, paint: Paint, text: &str) -> String {
        paint_if(self.color_err, paint, text)
    }

    /// A progress bar over `total` items, drawn into the stderr `run` was
    /// given, and hidden unless [`progress`](Style::progress).
    pub(crate) fn progress_bar(&self, total: u64, what: &'static str) -> Progress {
        if !self.progress || total == 0 {
            return Progress {
                bar: indicatif::ProgressBar::hidden(),
                drawn: None,
            };
        }
        let drawn = Arc::new(Mutex::new(Vec::new()));
        let target = indicatif::ProgressDrawTarget::term_like(Box::new(Captured {
            drawn: Arc::clone(&drawn),
            width: console::Term::stderr()
                .size_checked()
                .map_or(80, |(_, w)| w),
        }));
        let bar = indicatif::ProgressBar::with_draw_target(Some(total), target);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} entries")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what);
        Progress {
            bar,
            drawn: Some(drawn),
        }
    }
}

fn paint_if(on: bool, paint: Paint, text: &str) -> String {
    if on && !text.is_empty() {
        format!("\x1b[{}m{text}\x1b[0m", paint.code())
    } else {
        text.to_owned()
    }
}

/// A progress bar whose drawing is collected and copied into the caller's
/// stderr as it advances.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    drawn: Option<Arc<Mutex<Vec<u8>>>>,
}

impl Progress {
    pub(crate) fn inc(&self, n: u64, err: &mut dyn Write) {
        self.bar.inc(n);
        self.copy_to(err);
    }

    pub(crate) fn finish(self, err: &mut dyn Write) {
        self.bar.finish_and_clear();
        self.copy_to(err);
    }

    fn copy_to(&self, err: &mut dyn Write) {
        if let Some(drawn) = &self.drawn {
            let mut drawn = drawn.lock().unwrap_or_else(PoisonError::into_inner);
            // A progress bar is not worth failing a command over.
            let _ = err.write_all(&drawn).and_then(|()| err.flush());
            drawn.clear();
        }
    }
}

/// A terminal as indicatif sees it, recording what it draws.
#[derive(Debug)]
struct Captured {
    drawn: Arc<Mutex<Vec<u8>>>,
    width: u16,
}

impl Captured {
    fn put(&self, text: &str) -> io::Result<()> {
        self.drawn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(text.as_bytes());
        Ok(())
    }
}

impl indicatif::TermLike for Captured {
    fn width(&self) -> u16 {
        self.width
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.put(&format!("\x1b[{n}A"))
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.put(&format!("\x1b[{n}B"))
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.put(&format!("\x1b[{n}C"))
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.put(&format!("\x1b[{n}D"))
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.put(s)?;
        self.put("\n")
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.put(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.put("\r\x1b[2K")
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

/// One table cell: plain text, painted after it is padded so that colour
/// escapes never count towards the width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cell {
    text: String,
    paint: Option<Paint>,
}

impl Cell {
    pub(crate) fn painted(text: impl Into<String>, paint: Paint) -> Cell {
        Cell {
            text: text.into(),
            paint: Some(paint),
        }
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(text: T) -> Cell {
        Cell {
            text: text.into(),
            paint: None,
        }
    }
}

/// Writes rows as aligned columns: the first row is the header (bold).
/// Columns listed in `right` are right-aligned (numbers).
pub(crate) fn table(
    out: &mut dyn Write,
    style: &Style,
    rows: &[Vec<Cell>],
    right: &[usize],
) -> io::Result<()> {
    let Some(columns) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let width = |cell: &Cell| console::measure_text_width(&cell.text);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    for (r, row) in rows.iter().enumerate() {
        // Trailing empty cells would only leave trailing spaces.
        let used = row
            .iter()
            .rposition(|c| !c.text.is_empty())
            .map_or(0, |i| i + 1);
        let mut line = String::new();
        for (i, cell) in row[..used].iter().enumerate() {
            let pad = " ".repeat(widths[i] - width(cell));
            let paint = if r == 0 {
                Some(Paint::Bold)
            } else {
                cell.paint
            };
            let text = match paint {
                Some(paint) => style.paint(paint, &cell.text),
                None => cell.text.clone(),
            };
            let last = i + 1 == used;
            if right.contains(&i) {
                line.push_str(&pad);
                line.push_str(&text);
            } else {
                line.push_str(&text);
                if !last {
                    line.push_str(&pad);
                }
            }
            if !last {
                line.push_str("  ");
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// A cache name as shown in a table: one line, at most 48 characters.
pub(crate) fn display_name(name: &str) -> String {
    conventions::display_name(name, 48)
}

pub(crate) fn size(bytes: u64) -> String {
    conventions::format_size(bytes)
}

/// How long ago `then` was, compactly: `45s`, `3h12m`, `4d`.
pub(crate) fn age(now: SystemTime, then: SystemTime) -> String {
    let age = now.duration_since(then).unwrap_or(Duration::ZERO);
    conventions::format_duration(Duration::from_secs(age.as_secs()))
}

pub(crate) fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(color: bool) -> Style {
        Style {
            color,
            color_err: color,
            quiet: false,
            verbose: false,
            progress: false,
        }
    }

    fn render(style: &Style, rows: &[Vec<Cell>]) -> String {
        let mut out = Vec::new();
        table(&mut out, style, rows, &[1]).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn rows() -> Vec<Vec<Cell>> {
        vec![
            vec!["NAME".into(), "SIZE".into(), "STATE".into()],
            vec![
                "a".into(),
                "1.0 KiB".into(),
                Cell::painted("corrupt", Paint::Yellow),
            ],
            vec!["longer".into(), "5 B".into(), "".into()],
            vec!["🦀 wide".into(), "0 B".into(), "ok".into()],
        ]
    }

    #[test]
    fn tables_align_and_right_justify_numbers() {
        assert_eq!(
            render(&style(false), &rows()),
            "NAME        SIZE  STATE\n\
             a        1.0 KiB  corrupt\n\
             longer       5 B\n\
             🦀 wide      0 B  ok\n"
        );
    }

    #[test]
    fn colours_do_not_move_columns() {
        let plain = render(&style(false), &rows());
        let painted = render(&style(true), &rows());
        assert_ne!(plain, painted);
        assert_eq!(console::strip_ansi_codes(&painted), plain);
    }

    #[test]
    fn names_are_one_short_line() {
        assert_eq!(display_name(""), "\"\"");
        assert_eq!(display_name("a\nb"), "a b");
        assert_eq!(display_name(&"x".repeat(100)).chars().count(), 49);
    }

    #[test]
    fn progress_bars_draw_into_the_given_stream_only_on_a_terminal() {
        let mut on = style(false);
        on.progress = true;
        let mut err = Vec::new();
        let bar = on.progress_bar(3, "Flushed");
        for _ in 0..3 {
            bar.inc(1, &mut err);
        }
        bar.finish(&mut err);
        let drawn = String::from_utf8(err).unwrap();
        assert!(drawn.contains("Flushed ["), "{drawn:?}");

        let mut err = Vec::new();
        let hidden = style(false).progress_bar(3, "Flushed");
        hidden.inc(3, &mut err);
        hidden.finish(&mut err);
        assert!(err.is_empty());
    }
}
