//! Reading JSON without building it: one pass over the text that checks the grammar
//! (<https://www.rfc-editor.org/rfc/rfc8259>) and hands back raw slices and the few strings
//! the receiver needs.
//!
//! A full parser (serde_json) walks a 900 KB email body twice as slowly as HMAC-SHA256 hashes
//! it, and a v2 body had to be walked twice to keep each delta's exact bytes. This reader
//! skips strings a word at a time and reads each delta's fields as it passes them, so the
//! core path stays close to its HMAC floor (`make bench`).
//!
//! It accepts the grammar serde_json accepts; a property test holds the two side by side.
//! Nesting is limited to [`MAX_DEPTH`] levels, where serde_json's `Value` stops at 127 and its
//! `IgnoredAny` has no limit: deeper text reads as invalid, and the caller forwards the body
//! whole (`notification::split`), so nothing is lost and the stack cannot overflow.

use std::borrow::Cow;

/// Deepest nesting accepted: deeper text is refused, never a stack overflow. No Nylas payload
/// comes near it.
const MAX_DEPTH: usize = 128;

/// The text is not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// A cursor over JSON text. Each read consumes one value (with the whitespace before it) or
/// fails with [`Invalid`], after which the reader is of no further use.
pub struct Reader<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

/// A string as it stands in the text, between its quotes.
#[derive(Debug, Clone, Copy)]
pub struct Str<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> Str<'a> {
    /// The string's value. `None` when an escape names a lone UTF-16 surrogate, which no
    /// Rust string can hold.
    pub fn decode(self) -> Option<Cow<'a, str>> {
        if self.escaped {
            unescape(self.raw).map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(self.raw))
        }
    }

    /// Whether the string's value is `name`.
    pub fn is(self, name: &str) -> bool {
        if self.escaped {
            unescape(self.raw).is_some_and(|value| value == name)
        } else {
            self.raw == name
        }
    }
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            at: 0,
            depth: 0,
        }
    }

    /// The first byte of the next value, without consuming it.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.as_bytes().get(self.at).copied()
    }

    /// Checks that only whitespace is left.
    pub fn finish(mut self) -> Result<(), Invalid> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(Invalid),
        }
    }

    /// Reads one value of any kind.
    pub fn skip(&mut self) -> Result<(), Invalid> {
        match self.peek() {
            Some(b'{') => self.object(|reader, _| reader.skip()),
            Some(b'[') => self.array(Self::skip),
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            _ => Err(Invalid),
        }
    }

    /// Runs `read` on the next value and returns the exact text it consumed with its result.
    pub fn spanned<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, Invalid>,
    ) -> Result<(&'a str, T), Invalid> {
        self.skip_whitespace();
        let start = self.at;
        let value = read(self)?;
        Ok((&self.text[start..self.at], value))
    }

    /// Reads an object, calling `field` with each key; `field` must read the key's value.
    pub fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, Str<'a>) -> Result<(), Invalid>,
    ) -> Result<(), Invalid> {
        self.open(b'{')?;
        if self.peek() == Some(b'}') {
            return self.close();
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(Invalid);
            }
            let key = self.string()?;
            self.expect(b':')?;
            field(self, key)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => return self.close(),
                _ => return Err(Invalid),
            }
        }
    }

    /// Reads an array, calling `item` for each element; `item` must read the element.
    pub fn array(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), Invalid>,
    ) -> Result<(), Invalid> {
        self.open(b'[')?;
        if self.peek() == Some(b']') {
            return self.close();
        }
        loop {
            item(self)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => return self.close(),
                _ => return Err(Invalid),
            }
        }
    }

    /// Reads a value that is kept only if it is a string that decodes; any other value is
    /// read and forgotten.
    pub fn text(&mut self) -> Result<Option<Cow<'a, str>>, Invalid> {
        if self.peek() == Some(b'"') {
            Ok(self.string()?.decode())
        } else {
            self.skip().map(|()| None)
        }
    }

    /// Reads a value that is kept only if it is an integer from 0 to `u64::MAX`.
    pub fn unsigned(&mut self) -> Result<Option<u64>, Invalid> {
        if matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
            let digits = self.number()?;
            Ok(digits.parse().ok())
        } else {
            self.skip().map(|()| None)
        }
    }

    /// Reads a value, descending into it with `object` if it is an object; any other value is
    /// read and forgotten.
    pub fn nested(
        &mut self,
        object: impl FnMut(&mut Self, Str<'a>) -> Result<(), Invalid>,
    ) -> Result<(), Invalid> {
        if self.peek() == Some(b'{') {
            self.object(object)
        } else {
            self.skip()
        }
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(self.at) {
            self.at += 1;
        }
    }

    #[inline]
    fn expect(&mut self, byte: u8) -> Result<(), Invalid> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    fn open(&mut self, bracket: u8) -> Result<(), Invalid> {
        self.expect(bracket)?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Invalid);
        }
        Ok(())
    }

    /// Consumes the closing bracket the caller has peeked.
    fn close(&mut self) -> Result<(), Invalid> {
        self.at += 1;
        self.depth -= 1;
        Ok(())
    }

    fn literal(&mut self, word: &str) -> Result<(), Invalid> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// Reads `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` and returns it.
    fn number(&mut self) -> Result<&'a str, Invalid> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut at = start;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => at = digits_end(bytes, at),
            _ => return Err(Invalid),
        }
        if bytes.get(at) == Some(&b'.') {
            at = required_digits(bytes, at + 1)?;
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            at = required_digits(bytes, at)?;
        }
        self.at = at;
        Ok(&self.text[start..at])
    }

    /// Reads a string whose opening quote the caller has peeked.
    #[inline]
    fn string(&mut self) -> Result<Str<'a>, Invalid> {
        let bytes = self.text.as_bytes();
        let start = self.at + 1;
        let mut at = start;
        let mut escaped = false;
        loop {
            at = plain_end(bytes, at);
            match bytes.get(at) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    at = escape_end(bytes, at + 1)?;
                }
                _ => return Err(Invalid),
            }
        }
        self.at = at + 1;
        Ok(Str {
            raw: &self.text[start..at],
            escaped,
        })
    }
}

fn digits_end(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    at
}

fn required_digits(bytes: &[u8], at: usize) -> Result<usize, Invalid> {
    let end = digits_end(bytes, at);
    if end > at {
        Ok(end)
    } else {
        Err(Invalid)
    }
}

/// Where the run of bytes that need no attention inside a string ends: at a quote, a
/// backslash, a control character (which JSON forbids unescaped) or the end of the text.
#[inline]
fn plain_end(bytes: &[u8], mut at: usize) -> usize {
    // Most strings are short keys and ids: a table lookup per byte finds their end soonest.
    // Longer ones (an email body) go on eight bytes at a time.
    let short = bytes.len().min(at + 16);
    while at < short {
        if SPECIAL[usize::from(bytes[at])] {
            return at;
        }
        at += 1;
    }
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Eight bytes at a time: a byte is flagged when it is below 0x20, or equal to `"` or `\`
    // (x ^ c has a zero byte there). Only the lowest flag is exact, which is the one used.
    while let Some(word) = bytes.get(at..at + 8) {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let zero_if_quote = x ^ (ONES * u64::from(b'"'));
        let zero_if_backslash = x ^ (ONES * u64::from(b'\\'));
        let flags = (x.wrapping_sub(ONES * 0x20) & !x)
            | (zero_if_quote.wrapping_sub(ONES) & !zero_if_quote)
            | (zero_if_backslash.wrapping_sub(ONES) & !zero_if_backslash);
        let flags = flags & HIGHS;
        if flags != 0 {
            return at + (flags.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while bytes.get(at).is_some_and(|&b| !SPECIAL[usize::from(b)]) {
        at += 1;
    }
    at
}

/// The bytes a string's plain run stops at: controls, `"` and `\`.
static SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Checks the escape after a backslash and returns where it ends.
fn escape_end(bytes: &[u8], at: usize) -> Result<usize, Invalid> {
    match bytes.get(at) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 1),
        Some(b'u') => match bytes.get(at + 1..at + 5) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(at + 5),
            _ => Err(Invalid),
        },
        _ => Err(Invalid),
    }
}

/// The value of a string's raw text, already checked by [`Reader::string`].
fn unescape(raw: &str) -> Option<String> {
    let mut value = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(backslash) = rest.find('\\') {
        value.push_str(&rest[..backslash]);
        let escape = &rest[backslash + 1..];
        let (c, used) = match *escape.as_bytes().first()? {
            b'b' => ('\u{8}', 1),
            b'f' => ('\u{c}', 1),
            b'n' => ('\n', 1),
            b'r' => ('\r', 1),
            b't' => ('\t', 1),
            b'u' => unicode_escape(escape)?,
            other => (char::from(other), 1),
        };
        value.push(c);
        rest = &escape[used..];
    }
    value.push_str(rest);
    Some(value)
}

/// Decodes `uXXXX`, or a surrogate pair `uXXXX\uXXXX`, at the start of `escape`.
fn unicode_escape(escape: &str) -> Option<(char, usize)> {
    let unit = |at: usize| u16::from_str_radix(escape.get(at..at + 4)?, 16).ok();
    let first = unit(1)?;
    if let Some(c) = char::from_u32(u32::from(first)) {
        return Some((c, 5));
    }
    if !(0xD800..0xDC00).contains(&first) || escape.get(5..7) != Some("\\u") {
        return None;
    }
    let second = unit(7)?;
    let c = char::decode_utf16([first, second]).next()?.ok()?;
    Some((c, 11))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(text: &str) -> bool {
        let mut reader = Reader::new(text);
        reader.skip().and_then(|()| reader.finish()).is_ok()
    }

    fn decoded(literal: &str) -> Option<String> {
        let mut reader = Reader::new(literal);
        reader.string().ok()?.decode().map(Cow::into_owned)
    }

    #[test]
    fn every_kind_of_value_is_read() {
        for text in [
            "null",
            "true",
            " false ",
            "0",
            "-0.5e+10",
            "12E3",
            r#""a\"b\\c\/\b\f\n\r\t\u00e9""#,
            "[]",
            "[1, [2, {}], \"x\"]",
            r#"{"a": {"b": [null]}, "c": 1}"#,
            "\t\r\n{ }\n",
        ] {
            assert!(valid(text), "{text}");
        }
    }

    #[test]
    fn what_json_forbids_is_refused() {
        for text in [
            "",
            "nul",
            "True",
            "01",
            "1.",
            ".5",
            "1e",
            "-",
            "+1",
            "\"unterminated",
            "\"tab\tinside\"",
            r#""\x""#,
            r#""\u12G4""#,
            "[1,]",
            "[1 2]",
            r#"{"a" 1}"#,
            r#"{"a":1,}"#,
            "{1:2}",
            "{'a':1}",
            "[1]]",
            "1 2",
            "\u{a0}1",
        ] {
            assert!(!valid(text), "{text:?}");
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_without_overflow() {
        let nested = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
        assert!(valid(&nested(MAX_DEPTH)));
        assert!(!valid(&nested(MAX_DEPTH + 1)));
        assert!(!valid(&nested(100_000)));
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(decoded(r#""plain""#).as_deref(), Some("plain"));
        assert_eq!(
            decoded(r#""\"\\\/\b\f\n\r\t""#).as_deref(),
            Some("\"\\/\u{8}\u{c}\n\r\t")
        );
        assert_eq!(decoded(r#""caf\u00E9""#).as_deref(), Some("caf\u{e9}"));
        assert_eq!(decoded(r#""\ud83d\ude00!""#).as_deref(), Some("\u{1F600}!"));
    }

    #[test]
    fn lone_surrogates_do_not_decode() {
        for literal in [
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\ud83dx""#,
            r#""\ud83d\u0041""#,
        ] {
            assert_eq!(decoded(literal), None, "{literal}");
        }
    }

    #[test]
    fn keys_match_after_unescaping() {
        let mut reader = Reader::new(r#""ty\u0070e""#);
        let key = reader.string().expect("a valid string");
        assert!(key.is("type"));
        assert!(!key.is("typ"));
    }

    #[test]
    fn long_strings_are_scanned_to_the_right_byte() {
        for len in 0..40 {
            for special in ["\"", "\\n\"", "\u{1}\""] {
                let text = format!("\"{}{special}", "a".repeat(len));
                let mut reader = Reader::new(&text);
                let read = reader.string().map(|s| s.raw.len());
                let expected = if special == "\u{1}\"" {
                    Err(Invalid)
                } else {
                    Ok(len + special.len() - 1)
                };
                assert_eq!(read, expected, "{text:?}");
            }
        }
    }

    #[test]
    fn spans_are_the_exact_text_of_a_value() {
        let mut reader = Reader::new(" [ {\"a\" : 1} , 2 ]");
        let mut spans = Vec::new();
        reader
            .array(|r| {
                spans.push(r.spanned(Reader::skip)?.0);
                Ok(())
            })
            .expect("valid");
        assert_eq!(spans, ["{\"a\" : 1}", "2"]);
    }

    #[test]
    fn unsigned_keeps_only_integers_that_fit() {
        let read = |text: &str| Reader::new(text).unsigned();
        assert_eq!(read("3"), Ok(Some(3)));
        assert_eq!(read("18446744073709551615"), Ok(Some(u64::MAX)));
        for other in ["18446744073709551616", "-1", "1.0", "1e2", "\"2\"", "[2]"] {
            assert_eq!(read(other), Ok(None), "{other}");
        }
    }
}
