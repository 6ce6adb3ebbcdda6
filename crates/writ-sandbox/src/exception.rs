//! What query code and scripts share when a JavaScript exception becomes an error: its
//! message as a string, bounded, and where in the caller's code it was thrown.

use rquickjs::{Coerced, Ctx, FromJs, Value};

/// Longest error message passed on, in bytes.
pub(crate) const MESSAGE_BYTES_MAX: usize = 1024;

/// `String(value)`, or None if that throws (a symbol, a throwing `toString`).
pub(crate) fn string_of<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Option<String> {
    let text = Coerced::<String>::from_js(ctx, value)
        .ok()
        .map(|coerced| coerced.0);
    if ctx.has_exception() {
        ctx.catch();
    }
    text
}

/// The first `{file}:LINE:COLUMN` of a stack trace, with the column counted in the
/// caller's code: line 1 starts after a wrapper's `head` bytes.
pub(crate) fn location(stack: &str, file: &str, head: usize) -> Option<(u32, u32)> {
    let needle = format!("{file}:");
    let mut rest = stack;
    while let Some(at) = rest.find(&needle) {
        rest = &rest[at + needle.len()..];
        let mut parts = rest.splitn(3, |c: char| !c.is_ascii_digit());
        let line = parts.next().and_then(|line| line.parse::<u32>().ok());
        let column = parts.next().and_then(|column| column.parse::<u32>().ok());
        if let (Some(line), Some(column)) = (line, column) {
            let column = if line == 1 {
                column.saturating_sub(u32::try_from(head).unwrap_or(u32::MAX))
            } else {
                column
            };
            return Some((line, column.max(1)));
        }
    }
    None
}

/// `message` cut to [`MESSAGE_BYTES_MAX`] bytes (at a character boundary, then `…`).
pub(crate) fn truncate(mut message: String) -> String {
    if message.len() > MESSAGE_BYTES_MAX {
        let mut end = MESSAGE_BYTES_MAX;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}
