//! The tokenizer of the text index: how titles, comments and `text=` searches become words.
//!
//! A token is a maximal run of alphanumeric characters (Unicode `char::is_alphanumeric`:
//! letters and digits of any script); everything else (spaces, punctuation, symbols)
//! separates tokens. Tokens are lowercased (Unicode `str::to_lowercase`) and cut to
//! [`TOKEN_BYTES_MAX`] bytes at a character boundary, so a long run of garbage costs one
//! bounded index entry. There is no stemming and there are no stop words: `printers` does
//! not find `printer`, and `the` is a token like any other.
//!
//! ```
//! use writ_tickets::read::tokens;
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
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|run| !run.is_empty())
        .map(|run| {
            if run
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                Cow::Borrowed(&run[..run.len().min(TOKEN_BYTES_MAX)])
            } else {
                let mut lower = run.to_lowercase();
                if lower.len() > TOKEN_BYTES_MAX {
                    let mut end = TOKEN_BYTES_MAX;
                    while !lower.is_char_boundary(end) {
                        end -= 1;
                    }
                    lower.truncate(end);
                }
                Cow::Owned(lower)
            }
        })
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
    fn separators_only_give_no_tokens() {
        assert_eq!(tokens(" -- !? ").count(), 0);
        assert_eq!(tokens("").count(), 0);
    }
}
