//! Typed access to a query's arguments.
//!
//! Arguments arrive as a JSON object from two places: the HTTP query string, where every
//! value is a string (`?limit=10`), and query code, where values keep their JSON types
//! (`listCounters({limit: 10})`). [`Args`] accepts both spellings of a number and turns
//! every mismatch into a [`QueryError::BadArgument`] that names the argument.

use serde_json::{Map, Value};

use crate::QueryError;
use crate::library::Budget;

/// A query's arguments, already checked against the query's parameter list (unknown names
/// refused, `null` removed) by the [`QueryCatalog`](crate::QueryCatalog), and the
/// [`Budget`] of the answer when the caller has one (query code in the sandbox).
///
/// # Answers of unbounded size
///
/// A query whose answer grows with the data (every entry of a list, every event of a
/// history) builds it with [`Args::array`] or charges each part with [`Args::charge`]: when
/// query code calls it, each part counts against the query's memory and time limits as it
/// is built, and the query gives up with [`QueryError::OverBudget`] at the first part that
/// does not fit, before the host has built more than the budget. A named query (over HTTP,
/// no budget) charges nothing.
///
/// ```
/// use serde_json::json;
/// use writ_query::Args;
///
/// let map = json!({"id": "t-1", "limit": "10"}).as_object().unwrap().clone();
/// let args = Args::new(&map);
/// assert_eq!(args.required_str("id").unwrap(), "t-1");
/// assert_eq!(args.u64("limit").unwrap(), Some(10));
/// assert_eq!(args.str("text").unwrap(), None);
/// assert!(args.required_str("missing").is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    map: &'a Map<String, Value>,
    budget: Option<&'a Budget>,
}

impl<'a> Args<'a> {
    /// Wraps an argument object; the answer has no budget.
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self { map, budget: None }
    }

    /// Wraps an argument object; the answer is built within `budget`.
    pub fn with_budget(map: &'a Map<String, Value>, budget: &'a Budget) -> Self {
        Self {
            map,
            budget: Some(budget),
        }
    }

    /// The answer's budget, if the caller gave one.
    pub fn budget(&self) -> Option<&'a Budget> {
        self.budget
    }

    /// Charges the (estimated) JSON of one part of the answer to the budget, if there is
    /// one; [`QueryError::OverBudget`] once the answer does not fit.
    pub fn charge(&self, part: &Value) -> Result<(), QueryError> {
        match self.budget {
            Some(budget) => budget.charge_json(part).map_err(QueryError::from),
            None => Ok(()),
        }
    }

    /// The JSON array of `items`, each charged to the budget as it is made: a list of
    /// unbounded length stops at the first item over the budget.
    ///
    /// ```
    /// use serde_json::{Map, json};
    /// use writ_query::{Args, Budget, QueryError};
    ///
    /// let map = Map::new();
    /// let budget = Budget::new(1_000, None);
    /// let args = Args::with_budget(&map, &budget);
    /// let few = args.array((0..10).map(|n| json!({"n": n})));
    /// assert_eq!(few.unwrap().as_array().unwrap().len(), 10);
    /// let many = args.array((0..1_000_000_000u64).map(|n| json!({"n": n})));
    /// assert!(matches!(many, Err(QueryError::OverBudget { .. })));
    /// // Without a budget, everything is collected.
    /// let unbounded = Args::new(&map).array((0..1_000).map(|n| json!(n))).unwrap();
    /// assert_eq!(unbounded.as_array().unwrap().len(), 1_000);
    /// ```
    pub fn array(&self, items: impl IntoIterator<Item = Value>) -> Result<Value, QueryError> {
        let items = items.into_iter();
        let Some(budget) = self.budget else {
            return Ok(Value::Array(items.collect()));
        };
        // The brackets and a comma per item.
        budget.charge(2)?;
        let mut array = Vec::with_capacity(items.size_hint().0.min(1024));
        for item in items {
            budget.charge_json(&item)?;
            budget.charge(1)?;
            array.push(item);
        }
        Ok(Value::Array(array))
    }

    /// The raw arguments.
    pub fn map(&self) -> &'a Map<String, Value> {
        self.map
    }

    /// A string argument, `None` when absent.
    pub fn str(&self, name: &str) -> Result<Option<&'a str>, QueryError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(QueryError::bad_argument(
                name,
                format!("must be a string, got {}", kind(other)),
            )),
        }
    }

    /// A string argument that must be present.
    pub fn required_str(&self, name: &str) -> Result<&'a str, QueryError> {
        self.str(name)?
            .ok_or_else(|| QueryError::bad_argument(name, "is required"))
    }

    /// A non-negative integer argument, given as a JSON number or a string of decimal
    /// digits; `None` when absent or an empty string (`?limit=`, as the contract's query
    /// templates spell an argument left out).
    pub fn u64(&self, name: &str) -> Result<Option<u64>, QueryError> {
        let bad = || QueryError::bad_argument(name, "must be a non-negative integer");
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => {
                if !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                s.parse().map(Some).map_err(|_| bad())
            }
            Some(_) => Err(bad()),
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks arguments against a parameter list: unwraps the options-object form, drops
/// `null`s, refuses unknown names. See [`Library::call`](crate::Library::call).
pub(crate) fn normalize(
    params: &[String],
    mut args: Map<String, Value>,
) -> Result<Map<String, Value>, QueryError> {
    if args.len() == 1
        && let Some(first) = params.first()
        && matches!(args.get(first), Some(Value::Object(_)))
    {
        let Some(Value::Object(named)) = args.remove(first) else {
            unreachable!("checked above")
        };
        args = named;
    }
    args.retain(|_, value| !value.is_null());
    if let Some(unknown) = args.keys().find(|name| !params.contains(name)) {
        let detail = if params.is_empty() {
            "unknown argument; this query takes none".to_owned()
        } else {
            format!("unknown argument; this query takes {}", params.join(", "))
        };
        return Err(QueryError::bad_argument(unknown.as_str(), detail));
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().expect("an object").clone()
    }

    #[test]
    fn an_options_object_in_first_position_is_the_named_arguments() {
        let p = params(&["status", "limit"]);
        let named = normalize(
            &p,
            object(json!({"status": {"status": "open", "limit": 3}})),
        );
        assert_eq!(
            named.unwrap(),
            object(json!({"status": "open", "limit": 3}))
        );
        let positional = normalize(&p, object(json!({"status": "open", "limit": null})));
        assert_eq!(positional.unwrap(), object(json!({"status": "open"})));
    }

    #[test]
    fn unknown_arguments_are_refused_by_name() {
        let err = normalize(&params(&["id"]), object(json!({"idd": "t-1"}))).unwrap_err();
        assert_eq!(err.code(), "bad_argument");
        assert!(matches!(err, QueryError::BadArgument { argument, .. } if argument == "idd"));
        let err = normalize(&[], object(json!({"x": 1}))).unwrap_err();
        assert!(err.to_string().contains("takes none"), "{err}");
    }

    #[test]
    fn numbers_come_as_json_numbers_or_decimal_strings() {
        let map = object(json!({"a": 7, "b": "12", "c": "-1", "d": 1.5, "e": "", "f": true}));
        let args = Args::new(&map);
        assert_eq!(args.u64("a").unwrap(), Some(7));
        assert_eq!(args.u64("b").unwrap(), Some(12));
        for bad in ["c", "d", "f"] {
            assert!(args.u64(bad).is_err(), "{bad}");
        }
        assert_eq!(args.u64("e").unwrap(), None, "empty is left out");
        assert!(args.str("a").is_err());
        assert_eq!(args.u64("zz").unwrap(), None);
    }
}
