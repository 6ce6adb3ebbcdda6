//! The snapshots of an app's read models: which files each one's code tag covers, and the
//! bytes of a JSON value in a snapshot.
//!
//! # Code tags
//!
//! A read model built from an app's files is only loaded from a snapshot written by the
//! same files ([`writ_query::Projection::code_tag`]). The tag is `app-` and the SHA-256 of
//! those files ([`AppFiles::digest_of`]):
//!
//! - a type's read model (`T`): `resources/T.json` (its title names the events it
//!   folds, `x-writ-version` the version they are upcast to), `migrations/T.js` (the
//!   upcasts), `machines/T.json` and `handlers/T.js` (the custom events it folds, and the
//!   machine's field a transition sets). Not `rules/T.json`: rules only decide commands;
//! - a `projections/P.js` read model: `projections/P.js`, and `resources/T.json` and
//!   `migrations/T.js` of every type, since the events it is given are upcast by them
//!   (any type's events, and an event type of an old title still upcasts by its stream).
//!
//! A file added, removed or changed among them changes the tag, and the read model replays
//! from position 1 at the next start. A projection's tag also covers the names of the
//! compiled domains served beside the app (`--domain`): a domain served upcasts its
//! streams' events, one not served leaves them as recorded. The code compiled into the build (the sandbox, the
//! folding) is the build tag's, as for every read model.
//!
//! # A JSON value's bytes
//!
//! A tag byte, then: `0` null, `1` false, `2` true, `3` a non-negative integer (varint),
//! `4` a negative integer (zigzag varint), `5` any other number (the f64's bits, u64
//! little-endian), `6` a string (varint length, UTF-8), `7` an array (count, items), `8`
//! an object (count, then each member's name as a string and its value). Numbers come back
//! bit for bit (no text round trip); nesting deeper than [`JSON_DEPTH_MAX`] is refused at
//! load, as are non-finite floats and a member twice.

use serde_json::{Map, Number, Value};
use writ_query::snapshot::{Reader, SnapshotError, Writer};

use crate::bundle::{AppFiles, digest_files};
use crate::kind::ResourceType;

/// The snapshot format of both kinds of app read model: bump it whenever what they write
/// changes.
pub(crate) const FORMAT: u32 = 1;

/// The deepest nesting of arrays and objects a snapshot's JSON value may have.
pub(crate) const JSON_DEPTH_MAX: usize = 256;

/// The code tag of the files at `paths`.
fn tag(files: &AppFiles, paths: &[String]) -> String {
    format!("app-{}", files.digest_of(paths))
}

/// The code tag of a projection loaded alone ([`crate::ScriptProjection::load`]): of
/// its source, at `path` (`projections/P.js`), by itself.
pub(crate) fn source_tag(path: &str, body: &[u8]) -> String {
    format!("app-{}", digest_files([(path, Some(body))]))
}

/// The code tag of the read model of type `name`.
pub(crate) fn type_tag(files: &AppFiles, name: &str) -> String {
    tag(
        files,
        &[
            format!("resources/{name}.json"),
            format!("migrations/{name}.js"),
            format!("machines/{name}.json"),
            format!("handlers/{name}.js"),
        ],
    )
}

/// The code tag of the read model of `projections/{name}.js`, beside `types`.
pub(crate) fn projection_tag(files: &AppFiles, name: &str, types: &[ResourceType]) -> String {
    let mut paths = vec![format!("projections/{name}.js")];
    for ty in types {
        paths.push(format!("resources/{}.json", ty.name));
        paths.push(format!("migrations/{}.js", ty.name));
    }
    tag(files, &paths)
}

/// `tag` of a projection served beside the compiled domains `domains`: itself when there
/// are none, else `app-` and the SHA-256 of it and the domains' names (sorted, each once),
/// whose upcasts shape the events it is given.
pub(crate) fn beside(tag: &str, domains: &[String]) -> String {
    if domains.is_empty() {
        return tag.to_owned();
    }
    let mut names: Vec<&str> = domains.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let listed = names.join("\n");
    format!(
        "app-{}",
        digest_files([
            ("tag", Some(tag.as_bytes())),
            ("domains", Some(listed.as_bytes()))
        ])
    )
}

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UNSIGNED: u8 = 3;
const NEGATIVE: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// Writes `value`.
pub(crate) fn save_json(value: &Value, out: &mut Writer) {
    match value {
        Value::Null => out.u8(NULL),
        Value::Bool(false) => out.u8(FALSE),
        Value::Bool(true) => out.u8(TRUE),
        Value::Number(number) => {
            if let Some(n) = number.as_u64() {
                out.u8(UNSIGNED);
                out.varint(n);
            } else if let Some(n) = number.as_i64() {
                out.u8(NEGATIVE);
                out.varint(((n << 1) ^ (n >> 63)) as u64);
            } else {
                out.u8(FLOAT);
                out.u64(number.as_f64().unwrap_or(0.0).to_bits());
            }
        }
        Value::String(text) => {
            out.u8(STRING);
            out.str(text);
        }
        Value::Array(items) => {
            out.u8(ARRAY);
            out.len_prefix(items.len());
            for item in items {
                save_json(item, out);
            }
        }
        Value::Object(members) => {
            out.u8(OBJECT);
            out.len_prefix(members.len());
            for (name, member) in members {
                out.str(name);
                save_json(member, out);
            }
        }
    }
}

/// Reads a value [`save_json`] wrote; never panics.
pub(crate) fn load_json(input: &mut Reader<'_>) -> Result<Value, SnapshotError> {
    load_nested(input, 0)
}

fn load_nested(input: &mut Reader<'_>, depth: usize) -> Result<Value, SnapshotError> {
    let tag = input.u8()?;
    if matches!(tag, ARRAY | OBJECT) && depth >= JSON_DEPTH_MAX {
        return Err(input.invalid("JSON nested deeper than 256"));
    }
    Ok(match tag {
        NULL => Value::Null,
        FALSE => Value::Bool(false),
        TRUE => Value::Bool(true),
        UNSIGNED => Value::Number(input.varint()?.into()),
        NEGATIVE => {
            let zigzag = input.varint()?;
            let n = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
            if n >= 0 {
                return Err(input.invalid("a negative integer that is not negative"));
            }
            Value::Number(n.into())
        }
        FLOAT => {
            let n = f64::from_bits(input.u64()?);
            // serde_json holds an integral float as a float: only NaN and infinities
            // are not numbers.
            Value::Number(Number::from_f64(n).ok_or_else(|| input.invalid("a non-finite number"))?)
        }
        STRING => Value::String(input.str()?.to_owned()),
        ARRAY => {
            let count = input.count(1)?;
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                items.push(load_nested(input, depth + 1)?);
            }
            Value::Array(items)
        }
        OBJECT => {
            // A member takes at least 2 bytes: an empty name and a null.
            let count = input.count(2)?;
            let mut members = Map::new();
            for _ in 0..count {
                let name = input.str()?.to_owned();
                let member = load_nested(input, depth + 1)?;
                if members.insert(name, member).is_some() {
                    return Err(input.invalid("a JSON member twice"));
                }
            }
            Value::Object(members)
        }
        _ => return Err(input.invalid("a JSON tag this code does not write")),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip(value: &Value) -> Value {
        let mut out = Writer::new();
        save_json(value, &mut out);
        let bytes = out.into_vec();
        let mut input = Reader::new(&bytes);
        let back = load_json(&mut input).unwrap();
        input.finish().unwrap();
        back
    }

    #[test]
    fn json_comes_back_equal_numbers_bit_for_bit() {
        let value = json!({
            "null": null, "yes": true, "no": false, "big": u64::MAX, "small": i64::MIN,
            "minus": -1, "zero": 0, "float": 0.1, "third": 1.0 / 3.0, "whole": 2.0,
            "tiny": 5e-324, "text": "ünïcode ✓", "list": [1, [2, [3, {}]], []],
            "nested": {"a": {"b": {"c": "d"}}}
        });
        let back = round_trip(&value);
        assert_eq!(back, value);
        assert_eq!(
            back["third"].as_f64().unwrap().to_bits(),
            (1.0f64 / 3.0).to_bits()
        );
        assert!(back["whole"].is_f64());
    }

    #[test]
    fn the_domains_beside_change_a_tag_whatever_their_order() {
        let tag = "app-0123";
        assert_eq!(beside(tag, &[]), tag);
        let one = beside(tag, &["orders".to_owned()]);
        let two = beside(tag, &["orders".to_owned(), "tickets".to_owned()]);
        assert!(one != tag && two != one && one.len() == 4 + 64);
        assert_eq!(
            beside(
                tag,
                &[
                    "tickets".to_owned(),
                    "orders".to_owned(),
                    "orders".to_owned()
                ]
            ),
            two
        );
        assert_ne!(beside("app-4567", &["orders".to_owned()]), one);
    }

    #[test]
    fn damaged_json_fails_without_panicking() {
        let mut out = Writer::new();
        save_json(&json!({"a": [1, -2, 3.5, "x", null, true]}), &mut out);
        let bytes = out.into_vec();
        for cut in 0..bytes.len() {
            assert!(load_json(&mut Reader::new(&bytes[..cut])).is_err());
        }
        for at in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[at] ^= flip;
                let _ = load_json(&mut Reader::new(&damaged));
            }
        }
        // Too deep, a member twice, a non-finite float.
        let mut deep = [ARRAY, 1].repeat(JSON_DEPTH_MAX + 1);
        deep.push(NULL);
        assert!(load_json(&mut Reader::new(&deep)).is_err());
        let twice = [OBJECT, 2, 1, b'a', NULL, 1, b'a', NULL];
        assert!(load_json(&mut Reader::new(&twice)).is_err());
        let mut nan = vec![FLOAT];
        nan.extend_from_slice(&f64::NAN.to_bits().to_le_bytes());
        assert!(load_json(&mut Reader::new(&nan)).is_err());
    }
}
