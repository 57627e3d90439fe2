//! `filter=field:op:value,...`, `sort=field:asc|desc,...` and pagination parameters.

use crate::state::ApiError;
use crate::util::Query;

/// One `field:op:value` condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cond {
    pub field: String,
    pub op: String,
    pub values: Vec<String>,
    pub text: String,
}

/// Split on commas that are not inside `[...]`.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

pub(crate) fn parse_filter(raw: Option<&str>) -> Result<Vec<Cond>, ApiError> {
    let raw = match raw {
        Some(r) if !r.is_empty() => r,
        _ => return Ok(vec![]),
    };
    let mut out = Vec::new();
    for expr in split_top(raw) {
        let bad = || {
            ApiError::bad_filter(format!(
                "Invalid filter '{expr}'. Expected field:operator:value."
            ))
        };
        let mut it = expr.splitn(3, ':');
        let (field, op, value) = match (it.next(), it.next(), it.next()) {
            (Some(f), Some(o), Some(v)) if !f.is_empty() && !o.is_empty() => (f, o, v),
            _ => return Err(bad()),
        };
        let values = if op == "in" {
            let inner = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .ok_or_else(bad)?;
            inner.split(',').map(str::to_owned).collect()
        } else {
            vec![value.to_owned()]
        };
        out.push(Cond {
            field: field.to_owned(),
            op: op.to_owned(),
            values,
            text: expr.to_owned(),
        });
    }
    Ok(out)
}

/// How a field may be filtered.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// eq, in, cieq (and has for names)
    Text,
    /// eq
    Bool,
    /// eq, gt, gte, lt, lte on ISO-8601 strings
    Time,
    /// eq only
    Id,
}

pub(crate) fn check_ops(conds: &[Cond], fields: &[(&str, Kind)]) -> Result<(), ApiError> {
    for c in conds {
        let kind = fields.iter().find(|(f, _)| *f == c.field).map(|(_, k)| *k);
        let ok = match kind {
            None => false,
            Some(Kind::Text) => matches!(c.op.as_str(), "eq" | "in" | "cieq" | "has"),
            Some(Kind::Bool) => c.op == "eq" && matches!(c.values[0].as_str(), "true" | "false"),
            Some(Kind::Time) => matches!(c.op.as_str(), "eq" | "gt" | "gte" | "lt" | "lte"),
            Some(Kind::Id) => matches!(c.op.as_str(), "eq" | "in"),
        };
        if !ok {
            return Err(ApiError::bad_filter(format!(
                "Invalid filter '{}': field '{}' with operator '{}' is not supported for this resource.",
                c.text, c.field, c.op
            )));
        }
    }
    Ok(())
}

/// Does `actual` satisfy the condition? (Operators were validated by `check_ops`.)
pub(crate) fn matches(c: &Cond, actual: &str) -> bool {
    let v = c.values[0].as_str();
    match c.op.as_str() {
        "eq" => actual == v,
        "cieq" => actual.to_lowercase() == v.to_lowercase(),
        "has" => actual.to_lowercase().contains(&v.to_lowercase()),
        "in" => c.values.iter().any(|x| x == actual),
        "gt" => actual > v,
        "gte" => actual >= v,
        "lt" => actual < v,
        "lte" => actual <= v,
        _ => false,
    }
}

/// `sort=field:asc|desc,...`
pub(crate) fn parse_sort(
    raw: Option<&str>,
    fields: &[&str],
) -> Result<Vec<(String, bool)>, ApiError> {
    let raw = match raw {
        Some(r) if !r.is_empty() => r,
        _ => return Ok(vec![]),
    };
    let mut out = Vec::new();
    for expr in raw.split(',') {
        let (f, d) = expr.split_once(':').unwrap_or((expr, "asc"));
        let desc = match d {
            "asc" => false,
            "desc" => true,
            _ => return Err(ApiError::bad_filter(format!("Invalid sort '{expr}'."))),
        };
        if !fields.contains(&f) {
            return Err(ApiError::bad_filter(format!(
                "Invalid sort '{expr}': field '{f}' cannot be sorted on."
            )));
        }
        out.push((f.to_owned(), desc));
    }
    Ok(out)
}

/// (pageSize, pageNumber) from the query, pageSize clamped to `max`.
pub(crate) fn page(q: &Query, max: u32) -> Result<(u32, u32), ApiError> {
    let size = match q.get("pageSize") {
        None => 100,
        Some(s) => match s.trim().parse::<u64>() {
            Ok(n) if n >= 1 => n.min(u32::MAX as u64) as u32,
            _ => {
                return Err(ApiError::bad_filter(format!(
                    "Invalid page size '{s}'. The page size must be an integer from 1 to 1000."
                )))
            }
        },
    };
    let number = match q.get("pageNumber") {
        None => 1,
        Some(s) => match s.trim().parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(ApiError::bad_filter(format!(
                    "Invalid page number '{s}'. The page number must be a positive integer."
                )))
            }
        },
    };
    Ok((size.min(max.max(1)), number))
}

/// Slice of `items` for the page.
pub(crate) fn slice<T>(items: &[T], size: u32, number: u32) -> &[T] {
    let start = (size as usize)
        .saturating_mul(number as usize - 1)
        .min(items.len());
    let end = start.saturating_add(size as usize).min(items.len());
    &items[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_grammar() {
        let f = parse_filter(Some(
            "name:in:[a,b c],topLevelProject:eq:true,createdAt:gt:2020-01-01T00:00:00Z",
        ))
        .unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].values, vec!["a", "b c"]);
        assert_eq!(f[2].values, vec!["2020-01-01T00:00:00Z"]);
        assert!(parse_filter(Some("name")).is_err());
        assert!(parse_filter(Some("name:in:a,b")).is_err());
        assert!(parse_filter(None).unwrap().is_empty());
    }

    #[test]
    fn paging() {
        let q = Query::parse("pageSize=5000&pageNumber=2");
        assert_eq!(page(&q, 1000).unwrap(), (1000, 2));
        assert!(page(&Query::parse("pageSize=0"), 10).is_err());
        let v = [1, 2, 3, 4, 5];
        assert_eq!(slice(&v, 2, 3), &[5]);
        assert!(slice(&v, 2, 9).is_empty());
    }
}
