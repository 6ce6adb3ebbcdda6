//! The tokenizer: how text becomes the words of a [`TextIndex`](crate::collections::TextIndex)
//! and how a search's text becomes the words it looks up. Both sides must use the same
//! one, so it lives here, with the index, rather than in each domain.
//!
//! A token is a maximal run of alphanumeric characters (Unicode `char::is_alphanumeric`:
//! letters and digits of any script); everything else (spaces, punctuation, symbols)
//! separates tokens. Tokens are lowercased (Unicode `str::to_lowercase`) and cut to
//! [`TOKEN_BYTES_MAX`] bytes at a character boundary, so a long run of garbage costs one
//! bounded index entry. There is no stemming and there are no stop words: `printers` does
//! not find `printer`, and `the` is a token like any other.
//!
//! ```
//! use writ_query::text::tokens;
//! let words: Vec<_> = tokens("Printer on FIRE: call x-42!").collect();
//! assert_eq!(words, ["printer", "on", "fire", "call", "x", "42"]);
//! assert_eq!(tokens("Ünïcödé naïve").collect::<Vec<_>>(), ["ünïcödé", "naïve"]);
//! ```

use std::borrow::Cow;

/// The longest token kept, in bytes; longer runs are cut to it.
pub const TOKEN_BYTES_MAX: usize = 64;

/// The tokens of `text`, in order, duplicates included. Borrows when a token is already
/// lowercase ASCII (the common case), so indexing does not allocate per word.
pub fn tokens(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    runs(text).map(|run| {
        if is_lower_ascii(run) {
            Cow::Borrowed(cut_ascii(run))
        } else {
            Cow::Owned(lowercase(run))
        }
    })
}

/// Calls `f` with each of [`tokens`]`(text)`, in order, without allocating for ASCII
/// tokens (an uppercase ASCII token is lowercased in a buffer on the stack): what the
/// index runs for every text it takes in.
///
/// ```
/// let mut seen = Vec::new();
/// writ_query::text::each_token("Call x-42", |token| seen.push(token.to_owned()));
/// assert_eq!(seen, ["call", "x", "42"]);
/// ```
pub fn each_token(text: &str, mut f: impl FnMut(&str)) {
    let mut buffer = [0u8; TOKEN_BYTES_MAX];
    if text.is_ascii() {
        // The same tokens, found byte by byte: for ASCII, `char::is_alphanumeric` is
        // `u8::is_ascii_alphanumeric`, and every byte is a character boundary.
        let bytes = text.as_bytes();
        let mut at = 0;
        loop {
            while at < bytes.len() && !bytes[at].is_ascii_alphanumeric() {
                at += 1;
            }
            let start = at;
            let mut lower = true;
            while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
                lower &= !bytes[at].is_ascii_uppercase();
                at += 1;
            }
            if start == at {
                return;
            }
            let run = cut_ascii(&text[start..at]);
            if lower {
                f(run);
            } else {
                let lowered = &mut buffer[..run.len()];
                lowered.copy_from_slice(run.as_bytes());
                lowered.make_ascii_lowercase();
                f(std::str::from_utf8(lowered).expect("ASCII is UTF-8"));
            }
        }
    }
    for run in runs(text) {
        if is_lower_ascii(run) {
            f(cut_ascii(run));
        } else if run.is_ascii() {
            let run = cut_ascii(run);
            let lower = &mut buffer[..run.len()];
            lower.copy_from_slice(run.as_bytes());
            lower.make_ascii_lowercase();
            f(std::str::from_utf8(lower).expect("ASCII is UTF-8"));
        } else {
            f(&lowercase(run));
        }
    }
}

/// The maximal runs of alphanumeric characters.
fn runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|run| !run.is_empty())
}

fn is_lower_ascii(run: &str) -> bool {
    run.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// An ASCII run cut to [`TOKEN_BYTES_MAX`] (every byte is a character boundary).
fn cut_ascii(run: &str) -> &str {
    &run[..run.len().min(TOKEN_BYTES_MAX)]
}

/// `run` lowercased (Unicode) and cut to [`TOKEN_BYTES_MAX`] at a character boundary.
fn lowercase(run: &str) -> String {
    let mut lower = run.to_lowercase();
    if lower.len() > TOKEN_BYTES_MAX {
        let mut end = TOKEN_BYTES_MAX;
        while !lower.is_char_boundary(end) {
            end -= 1;
        }
        lower.truncate(end);
    }
    lower
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_runs_are_cut_at_a_character_boundary() {
        let long = "a".repeat(100);
        assert_eq!(tokens(&long).next().unwrap().len(), TOKEN_BYTES_MAX);
        let wide = "É".repeat(40); // 80 bytes, lowercased to "é" x 40
        let token = tokens(&wide).next().unwrap();
        assert_eq!(token, "é".repeat(32));
    }

    #[test]
    fn each_token_gives_the_tokens() {
        for text in [
            "Printer on FIRE: call x-42!",
            "Ünïcödé naïve ÉCOLE straße",
            "  Note 3 on COUNTER c-42, see #7 (x_y)  ",
            "Tail",
            &"AbC".repeat(30),
            &"É".repeat(40),
            "",
            " -- ",
        ] {
            let mut seen = Vec::new();
            each_token(text, |token| seen.push(token.to_owned()));
            let expected: Vec<String> = tokens(text).map(Cow::into_owned).collect();
            assert_eq!(seen, expected, "{text}");
        }
    }

    #[test]
    fn separators_only_give_no_tokens() {
        assert_eq!(tokens(" -- !? ").count(), 0);
        assert_eq!(tokens("").count(), 0);
    }
}
