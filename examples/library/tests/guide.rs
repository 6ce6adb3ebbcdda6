//! `docs/guide.md` quotes this crate. Every code block that follows a line
//! `<!-- quote: PATH -->` must still be in the file at PATH (from the repository's root):
//! the block's lines as they are in the file, where a line `// ...` (or `# ...`) stands for
//! lines left out, so the parts between such lines must appear in the file in order.
//!
//! (A crate of your own has no guide to check; this test keeps the guide true.)

use std::path::Path;

/// The repository's root: this crate is `examples/library`.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("examples/library sits two levels below the root")
}

/// A quoted block: the file it quotes, its line in the guide, and its parts.
struct Quote {
    path: String,
    line: usize,
    parts: Vec<String>,
}

fn quotes(guide: &str) -> Vec<Quote> {
    let mut quotes = Vec::new();
    let mut lines = guide.lines().enumerate();
    while let Some((at, line)) = lines.next() {
        let Some(path) = line
            .trim()
            .strip_prefix("<!-- quote:")
            .and_then(|rest| rest.strip_suffix("-->"))
        else {
            continue;
        };
        let fence = lines.next().map(|(_, l)| l).unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "guide line {}: a quote marker must be followed by a code block",
            at + 1
        );
        let mut parts = vec![String::new()];
        for (_, line) in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            if matches!(line.trim(), "// ..." | "# ...") {
                parts.push(String::new());
                continue;
            }
            let part = parts.last_mut().unwrap();
            part.push_str(line);
            part.push('\n');
        }
        parts.retain(|part| !part.is_empty());
        quotes.push(Quote {
            path: path.trim().to_owned(),
            line: at + 1,
            parts,
        });
    }
    quotes
}

#[test]
fn every_excerpt_in_the_guide_is_still_in_the_example() {
    let guide = std::fs::read_to_string(root().join("docs/guide.md")).expect("docs/guide.md");
    let quotes = quotes(&guide);
    assert!(
        quotes.len() >= 10,
        "the guide quotes the example throughout"
    );
    for quote in quotes {
        let text = std::fs::read_to_string(root().join(&quote.path))
            .unwrap_or_else(|e| panic!("guide line {}: {}: {e}", quote.line, quote.path));
        let mut from = 0;
        for part in &quote.parts {
            match text[from..].find(part.as_str()) {
                Some(at) => from += at + part.len(),
                None => panic!(
                    "guide line {}: this excerpt is no longer in {} (or not in this order):\n{part}",
                    quote.line, quote.path
                ),
            }
        }
    }
}
