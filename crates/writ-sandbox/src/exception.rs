//! What query code and scripts share when a JavaScript exception becomes an error: its
//! message as a string, bounded, and where in the caller's code it was thrown.

use rquickjs::{Coerced, Ctx, Exception, FromJs, Type, Value};

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

/// What a JavaScript `throw` that nothing caught carried, read once.
pub(crate) enum Caught<'js> {
    /// `null` (or nothing): QuickJS throws null when it cannot even allocate the error
    /// object for "out of memory". Code could throw null itself; it is then told about the
    /// memory limit, which costs it nothing but a misleading message.
    OutOfMemory,
    /// QuickJS's own stack overflow error.
    StackOverflow,
    /// A value that is not an `Error`, as a string.
    Value(String),
    /// An `Error`: its name (`Error` when it has none), its message, and the object for
    /// other properties.
    Error {
        name: String,
        message: String,
        exception: Exception<'js>,
    },
}

impl<'js> Caught<'js> {
    /// Reads `thrown` (its getters may run: the caller's deadline bounds them), telling
    /// QuickJS's own out-of-memory and stack overflow errors apart.
    pub(crate) fn of(ctx: &Ctx<'js>, thrown: Value<'js>) -> Self {
        if matches!(thrown.type_of(), Type::Null | Type::Uninitialized) {
            return Caught::OutOfMemory;
        }
        let Some(exception) = thrown.as_object().cloned().and_then(Exception::from_object) else {
            let text =
                string_of(ctx, thrown).unwrap_or_else(|| "a value without a string form".into());
            return Caught::Value(text);
        };
        let name = property(ctx, &exception, "name").unwrap_or_else(|| "Error".into());
        let message = property(ctx, &exception, "message").unwrap_or_default();
        match (name.as_str(), message.as_str()) {
            ("InternalError", "out of memory") => return Caught::OutOfMemory,
            ("RangeError", "Maximum call stack size exceeded")
            | ("InternalError", "stack overflow") => return Caught::StackOverflow,
            _ => {}
        }
        Caught::Error {
            name,
            message,
            exception,
        }
    }
}

/// Property `key` of `exception` as a string; `None` when absent or when reading it throws.
pub(crate) fn property<'js>(
    ctx: &Ctx<'js>,
    exception: &Exception<'js>,
    key: &str,
) -> Option<String> {
    let value = exception
        .get::<_, Option<Coerced<String>>>(key)
        .ok()
        .flatten()
        .map(|coerced| coerced.0);
    if ctx.has_exception() {
        ctx.catch();
    }
    value
}

/// `name: message` (or the name alone), bounded.
pub(crate) fn error_message(name: String, message: &str) -> String {
    truncate(if message.is_empty() {
        name
    } else {
        format!("{name}: {message}")
    })
}

/// `uncaught exception: {text}`, bounded: what a thrown value that is not an `Error` says.
pub(crate) fn value_message(text: &str) -> String {
    truncate(format!("uncaught exception: {text}"))
}
