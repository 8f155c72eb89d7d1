//! The little of RFC 5545 a published calendar needs: content lines ended by CRLF and folded
//! at 75 octets, TEXT values escaped, and date-times in UTC.

use jiff::Timestamp;

/// The longest content line, in octets, not counting its CRLF (RFC 5545 3.1).
pub const LINE_OCTETS: usize = 75;

/// An iCalendar object written one content line at a time.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    /// An empty object.
    pub fn new() -> Self {
        Writer::default()
    }

    /// `NAME:value`, the value written as it is: for values that are not TEXT (date-times,
    /// durations, enumerated values such as `CONFIRMED`).
    pub fn raw(&mut self, name: &str, value: &str) {
        self.line(&format!("{name}:{value}"));
    }

    /// `NAME:value` with the value escaped as TEXT.
    pub fn text(&mut self, name: &str, value: &str) {
        self.line(&format!("{name}:{}", escape(value)));
    }

    /// `NAME:a,b,…`: a list of TEXT values, each escaped (its own commas included).
    pub fn texts(&mut self, name: &str, values: &[&str]) {
        let values: Vec<String> = values.iter().map(|v| escape(v)).collect();
        self.line(&format!("{name}:{}", values.join(",")));
    }

    /// `NAME:20261128T000000Z`.
    pub fn date_time(&mut self, name: &str, at: Timestamp) {
        self.raw(name, &date_time(at));
    }

    /// One content line, folded, with its CRLF.
    fn line(&mut self, line: &str) {
        self.out.push_str(&fold(line));
    }

    /// The object's text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A DATE-TIME in UTC, `20261128T000000Z`; the fraction of a second is dropped, which
/// iCalendar has no way to write.
pub fn date_time(at: Timestamp) -> String {
    at.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// A TEXT value (RFC 5545 3.3.11): backslash, semicolon and comma escaped with a backslash,
/// line breaks (LF, CRLF or CR) written `\n`; other control characters, which TEXT may not
/// hold, dropped, except the tab.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\\n");
            }
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A content line folded as RFC 5545 3.1 says, with its CRLF: no line longer than
/// [`LINE_OCTETS`] octets, each continuation beginning with one space (which counts), and
/// never a UTF-8 character split between two lines.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 64 * 3 + 2);
    // The room left on the line being written; a continuation starts with its space.
    let mut room = LINE_OCTETS;
    for c in line.chars() {
        let width = c.len_utf8();
        if width > room {
            out.push_str("\r\n ");
            room = LINE_OCTETS - 1;
        }
        out.push(c);
        room -= width;
    }
    out.push_str("\r\n");
    out
}

/// The content lines of `text`, unfolded (RFC 5545 3.1): a line break followed by a space
/// or a tab is taken out. For tests, and for anyone who reads the feed back.
pub fn unfold(text: &str) -> Vec<String> {
    text.replace("\r\n ", "")
        .replace("\r\n\t", "")
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A TEXT value read back: the inverse of [`escape`] for what it writes.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("a\\b;c,d\ne\r\nf\rg\th\u{7}"),
            "a\\\\b\\;c\\,d\\ne\\nf\\ng\th"
        );
        assert_eq!(escape("Year-end: no changes"), "Year-end: no changes");
        for text in [
            "a\\b;c,d\ne",
            "plain",
            "\\n is not a line break",
            "Ünïcode, ok",
        ] {
            assert_eq!(unescape(&escape(text)), text);
        }
    }

    #[test]
    fn short_lines_are_not_folded() {
        assert_eq!(fold("VERSION:2.0"), "VERSION:2.0\r\n");
        let exact = "X".repeat(LINE_OCTETS);
        assert_eq!(fold(&exact), format!("{exact}\r\n"));
    }

    #[test]
    fn long_lines_fold_at_75_octets_on_character_boundaries() {
        // Three-octet and four-octet characters, so that a boundary falls inside one.
        let value = "Wartungsfenster – Änderungssperre 🔒 ".repeat(8);
        let line = format!("DESCRIPTION:{value}");
        let folded = fold(&line);
        assert!(folded.ends_with("\r\n"));
        let physical: Vec<&str> = folded.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(physical.len() > 4, "{physical:?}");
        for (i, piece) in physical.iter().enumerate() {
            assert!(piece.len() <= LINE_OCTETS, "{i}: {} octets", piece.len());
            if i > 0 {
                assert!(piece.starts_with(' '), "{i}: {piece:?}");
            }
        }
        // Lines are filled as far as a character allows: no line is cut short by more than
        // the width of the next character.
        for pair in physical.windows(2) {
            let next = pair[1][1..].chars().next().unwrap();
            assert!(pair[0].len() + next.len_utf8() > LINE_OCTETS, "{pair:?}");
        }
        assert_eq!(unfold(&folded), [line]);
    }

    #[test]
    fn date_times_are_utc_to_the_second() {
        let at: Timestamp = "2026-11-28T00:00:00.999+01:00".parse().unwrap();
        assert_eq!(date_time(at), "20261127T230000Z");
    }

    #[test]
    fn the_writer_ends_every_line_with_crlf() {
        let mut writer = Writer::new();
        writer.raw("BEGIN", "VCALENDAR");
        writer.text("SUMMARY", "a, b; c");
        writer.texts("CATEGORIES", &["patchpilot", "x,y"]);
        writer.raw("END", "VCALENDAR");
        assert_eq!(
            writer.finish(),
            "BEGIN:VCALENDAR\r\nSUMMARY:a\\, b\\; c\r\nCATEGORIES:patchpilot,x\\,y\r\nEND:VCALENDAR\r\n"
        );
    }
}
