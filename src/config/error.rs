//! Configuration errors that point at the file, line and column at fault.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem with switch.toml (or with a runtime request checked by the same rules).
///
/// Carries the position so that an operator editing a long file goes straight to the line;
/// errors from runtime commands (`add-port` arguments) have no file and no position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File the text came from; `None` for runtime requests.
    pub file: Option<PathBuf>,
    /// 1-based line and column of the offending text, when known.
    pub position: Option<(usize, usize)>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error without a location (runtime requests, I/O).
    pub fn plain(message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            position: None,
            message: message.into(),
        }
    }

    /// 1-based line of the error, if known (tests and tools use it).
    pub fn line(&self) -> Option<usize> {
        self.position.map(|(l, _)| l)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.position) {
            (Some(file), Some((line, col))) => {
                write!(f, "{}:{}:{}: {}", file.display(), line, col, self.message)
            }
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            (None, Some((line, col))) => write!(f, "line {}:{}: {}", line, col, self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Maps byte offsets in one source text to line:column, to turn toml spans into positions.
pub(crate) struct SourceMap<'a> {
    file: Option<&'a Path>,
    text: &'a str,
}

impl<'a> SourceMap<'a> {
    pub(crate) fn new(file: Option<&'a Path>, text: &'a str) -> Self {
        SourceMap { file, text }
    }

    /// 1-based (line, column) of byte offset `offset`; columns count characters.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// An error located at the start of `span` (or at no position if `span` is `None`).
    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.map(Path::to_path_buf),
            position: span.map(|s| self.position(s.start)),
            message: message.into(),
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let text = "a = 1\nbb = 2\n\nccc";
        let map = SourceMap::new(None, text);
        assert_eq!(map.position(0), (1, 1));
        assert_eq!(map.position(4), (1, 5));
        assert_eq!(map.position(6), (2, 1));
        assert_eq!(map.position(9), (2, 4));
        assert_eq!(map.position(14), (4, 1));
        assert_eq!(map.position(1000), (4, 4));
    }

    #[test]
    fn display_names_file_line_and_column() {
        let map = SourceMap::new(Some(Path::new("/etc/x.toml")), "a\nb");
        let e = map.error(Some(2..3), "expected a thing");
        assert_eq!(e.to_string(), "/etc/x.toml:2:1: expected a thing");
        assert_eq!(e.line(), Some(2));
    }
}
