//! The ids clients send: [`OrderId`] (`orderId`), [`Sku`] (`sku`) and [`CustomerId`]
//! (`customerId`).
//!
//! Each is checked while the payload is decoded, so a bad id is a decoding error (the
//! server answers `422`) and never reaches the rules: no command can address a stream
//! named `order-` or one with a newline in its name. An id is at most [`ID_BYTES_MAX`]
//! bytes of UTF-8 without control characters (`char::is_control`: C0, DEL, C1).
//!
//! Order ids and skus must not be empty: they name streams. A customer id may be empty
//! when decoded, because the contract gives an empty customer a code of its own: the
//! rule answers `customer_required` for a blank `customerId` (see
//! [`crate::codes::CUSTOMER_REQUIRED`]).
//!
//! ```
//! use writ_orders::{CustomerId, InvalidId, OrderId, Sku};
//!
//! assert_eq!(OrderId::new("o-1").unwrap().as_str(), "o-1");
//! assert_eq!(Sku::new(""), Err(InvalidId::Empty { field: "sku" }));
//! assert!(OrderId::new("a\nb").is_err());
//! assert!(OrderId::new("x".repeat(201)).is_err());
//! assert!(CustomerId::new("").is_ok()); // the rule refuses it, with customer_required
//! ```

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// The longest accepted id, in bytes.
pub const ID_BYTES_MAX: usize = 200;

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidId {
    /// The id is the empty string (order ids and skus only).
    Empty {
        /// The payload field, for example `orderId`.
        field: &'static str,
    },
    /// The id is longer than [`ID_BYTES_MAX`] bytes.
    TooLong {
        /// The payload field.
        field: &'static str,
        /// The id's length in bytes.
        len: usize,
    },
    /// The id holds a control character.
    ControlCharacter {
        /// The payload field.
        field: &'static str,
        /// The byte offset of the first control character.
        at: usize,
    },
}

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty { field } => write!(f, "{field} must not be empty"),
            Self::TooLong { field, len } => {
                write!(f, "{field} must be at most {ID_BYTES_MAX} bytes, got {len}")
            }
            Self::ControlCharacter { field, at } => {
                write!(f, "{field} must not contain control characters (byte {at})")
            }
        }
    }
}

impl std::error::Error for InvalidId {}

fn check(field: &'static str, may_be_empty: bool, id: &str) -> Result<(), InvalidId> {
    if id.is_empty() && !may_be_empty {
        return Err(InvalidId::Empty { field });
    }
    if id.len() > ID_BYTES_MAX {
        return Err(InvalidId::TooLong {
            field,
            len: id.len(),
        });
    }
    match id.char_indices().find(|(_, c)| c.is_control()) {
        Some((at, _)) => Err(InvalidId::ControlCharacter { field, at }),
        None => Ok(()),
    }
}

/// Checks the id before copying it, and reuses the decoder's buffer when it hands one over.
struct IdVisitor {
    field: &'static str,
    may_be_empty: bool,
}

impl Visitor<'_> for IdVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = if self.may_be_empty { "" } else { "non-empty " };
        write!(
            f,
            "{}: a {size}string of at most {ID_BYTES_MAX} bytes without control characters",
            self.field
        )
    }

    fn visit_str<E: de::Error>(self, id: &str) -> Result<String, E> {
        check(self.field, self.may_be_empty, id).map_err(E::custom)?;
        Ok(id.to_owned())
    }

    fn visit_string<E: de::Error>(self, id: String) -> Result<String, E> {
        check(self.field, self.may_be_empty, &id).map_err(E::custom)?;
        Ok(id)
    }
}

macro_rules! id_type {
    (
        $(#[$meta:meta])*
        $name:ident, field = $field:literal, may_be_empty = $may_be_empty:literal,
        description = $description:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks `id` and wraps it.
            pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
                let id = id.into();
                check($field, $may_be_empty, &id)?;
                Ok(Self(id))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;

            fn try_from(id: String) -> Result<Self, InvalidId> {
                Self::new(id)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidId;

            fn try_from(id: &str) -> Result<Self, InvalidId> {
                check($field, $may_be_empty, id)?;
                Ok(Self(id.to_owned()))
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;

            fn from_str(id: &str) -> Result<Self, InvalidId> {
                Self::try_from(id)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer
                    .deserialize_string(IdVisitor {
                        field: $field,
                        may_be_empty: $may_be_empty,
                    })
                    .map(Self)
            }
        }

        /// A string of at most [`ID_BYTES_MAX`] bytes without control characters (the
        /// length is checked in bytes, which JSON Schema cannot say; the schema gives the
        /// character bound that no valid id exceeds).
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                if $may_be_empty {
                    schemars::json_schema!({
                        "type": "string",
                        "maxLength": ID_BYTES_MAX,
                        "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
                        "description": $description,
                    })
                } else {
                    schemars::json_schema!({
                        "type": "string",
                        "minLength": 1,
                        "maxLength": ID_BYTES_MAX,
                        "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
                        "description": $description,
                    })
                }
            }
        }
    };
}

id_type! {
    /// An order's id, as clients send it in `orderId`: 1 to [`ID_BYTES_MAX`] bytes without
    /// control characters. The order lives on stream `order-{orderId}`.
    OrderId, field = "orderId", may_be_empty = false,
    description = "An order's id: 1 to 200 bytes of UTF-8 without control characters."
}

id_type! {
    /// A product's stock keeping unit, as clients send it in `sku`: 1 to [`ID_BYTES_MAX`]
    /// bytes without control characters. The product's stock lives on stream
    /// `product-{sku}`.
    Sku, field = "sku", may_be_empty = false,
    description = "A product's sku: 1 to 200 bytes of UTF-8 without control characters."
}

id_type! {
    /// A customer's id, as clients send it in `customerId`: at most [`ID_BYTES_MAX`] bytes
    /// without control characters. It names no stream; an empty or blank one decodes and
    /// is rejected by `CreateOrder`'s rule with `customer_required`.
    CustomerId, field = "customerId", may_be_empty = true,
    description = "A customer's id: at most 200 bytes of UTF-8 without control characters; `CreateOrder` rejects a blank one with `customer_required`."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_are_accepted() {
        for ok in [
            "o",
            "o-1",
            "order 42",
            "é",
            "日本語",
            "a/b:c?d#e",
            " padded ",
        ] {
            assert_eq!(OrderId::new(ok).unwrap().as_str(), ok, "{ok:?}");
            assert_eq!(Sku::new(ok).unwrap().as_str(), ok, "{ok:?}");
            assert_eq!(CustomerId::new(ok).unwrap().as_str(), ok, "{ok:?}");
        }
    }

    #[test]
    fn the_length_limit_counts_bytes_not_characters() {
        assert!(OrderId::new("x".repeat(200)).is_ok());
        assert!(Sku::new("é".repeat(100)).is_ok()); // 200 bytes
        assert_eq!(
            Sku::new("é".repeat(101)),
            Err(InvalidId::TooLong {
                field: "sku",
                len: 202
            })
        );
        assert_eq!(
            CustomerId::new("x".repeat(201)),
            Err(InvalidId::TooLong {
                field: "customerId",
                len: 201
            })
        );
    }

    #[test]
    fn empty_order_ids_and_skus_are_refused_empty_customer_ids_are_not() {
        assert_eq!(OrderId::new(""), Err(InvalidId::Empty { field: "orderId" }));
        assert_eq!(Sku::new(""), Err(InvalidId::Empty { field: "sku" }));
        assert_eq!(CustomerId::new("").unwrap().as_str(), "");
    }

    #[test]
    fn control_characters_are_refused() {
        for (bad, at) in [("a\nb", 1), ("\0", 0), ("tab\t", 3), ("éc1\u{85}", 4)] {
            assert_eq!(
                OrderId::new(bad),
                Err(InvalidId::ControlCharacter {
                    field: "orderId",
                    at
                }),
                "{bad:?}"
            );
            assert!(Sku::new(bad).is_err());
            assert!(CustomerId::new(bad).is_err());
        }
    }

    #[test]
    fn json_round_trip_is_a_plain_string_and_errors_name_the_field() {
        let id: OrderId = serde_json::from_str(r#""o-\u0031""#).unwrap();
        assert_eq!(id.as_str(), "o-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""o-1""#);
        let err = serde_json::from_str::<Sku>(r#""a\nb""#).unwrap_err();
        assert!(err.to_string().contains("sku must not contain"), "{err}");
        let err = serde_json::from_str::<OrderId>(r#""""#).unwrap_err();
        assert!(
            err.to_string().contains("orderId must not be empty"),
            "{err}"
        );
        assert!(serde_json::from_str::<CustomerId>("1").is_err());
        assert!(serde_json::from_str::<OrderId>("null").is_err());
    }
}
