//! The one place that installs the tracing subscriber, and how text from outside the
//! code is logged.
//!
//! The text format writes a field given with `%` (Display) as it is, so a newline in
//! it starts a line of its own that looks like any other: a client could forge log
//! lines. Text that a client, a database or a model provider supplied is therefore
//! logged as a field, never in the message: strings with `?` or as plain `&str` values
//! (quoted and escaped), errors and other `Display` text through [`escaped`]. Our own
//! typed values (ids, numbers, codes) may use `%`.

use std::fmt::{self, Display, Write};

use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), in colour only on a
/// terminal. Safe to call twice: the second call keeps the first subscriber.
pub fn init() {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).try_init();
}

/// `value`'s `Display` text with control characters and line separators escaped as
/// Rust writes them (`\n`, `\u{1b}`), so it stays on its log line: `error = %escaped(&error)`.
pub fn escaped<T: Display>(value: T) -> Escaped<T> {
    Escaped(value)
}

/// See [`escaped`].
#[derive(Clone, Copy, Debug)]
pub struct Escaped<T>(T);

impl<T: Display> Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

/// Writes through to a formatter, escaping what would break a line.
struct EscapingWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for c in text.chars() {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                write!(self.0, "{}", c.escape_default())?;
            } else {
                self.0.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text as supplied, and as a log line shows it.
    struct Case {
        text: &'static str,
        shown: &'static str,
    }

    #[test]
    fn escaped_text_stays_on_its_line() {
        let cases = [
            Case { text: "plain words", shown: "plain words" },
            Case {
                text: "nobody\n2026-12-03T00:00:00Z ERROR forged",
                shown: r"nobody\n2026-12-03T00:00:00Z ERROR forged",
            },
            Case { text: "carriage\rreturn", shown: r"carriage\rreturn" },
            Case { text: "tab\tstop", shown: r"tab\tstop" },
            Case { text: "\u{1b}[31mred", shown: r"\u{1b}[31mred" },
            Case { text: "next\u{85}line", shown: r"next\u{85}line" },
            Case { text: "line\u{2028}separator", shown: r"line\u{2028}separator" },
            Case {
                text: "quotes \" and \\ as they are, é and 𝔄 too",
                shown: "quotes \" and \\ as they are, é and 𝔄 too",
            },
        ];
        for case in cases {
            assert_eq!(escaped(case.text).to_string(), case.shown, "{:?}", case.text);
        }
    }

    #[test]
    fn an_error_is_escaped_through_its_display() {
        let error = std::io::Error::other("line one\nline two");
        assert_eq!(format!("{}", escaped(&error)), r"line one\nline two");
    }
}
