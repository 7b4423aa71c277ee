//! Chart values as Helm reads and merges them: values files parsed as YAML mappings, and
//! Helm's coalescing (a later document's mappings merge into an earlier one's, its other
//! values replace, and `null` removes a key).

use serde_json::{Map, Value};

/// Parses a values document: a mapping, or nothing (an empty mapping).
pub fn parse_values(text: &str) -> Result<Value, String> {
    let parsed: Option<Value> =
        serde_saphyr::from_str_with_options(text, super::metadata::yaml_options())
            .map_err(|e| e.to_string())?;
    match parsed {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err("it is not a mapping of values".to_string()),
    }
}

/// Merges `over` into `base` as Helm does when it applies a later values document.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                if value.is_null() {
                    base.remove(key);
                    continue;
                }
                match base.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The value at a dotted path (`redis.enabled`).
pub fn lookup<'a>(values: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(values, |v, key| v.as_object()?.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_as_helm() {
        let mut base = json!({"a": {"b": 1, "c": 2}, "d": [1], "e": "x"});
        merge(
            &mut base,
            &json!({"a": {"c": 3, "f": 4}, "d": [2], "e": null}),
        );
        assert_eq!(base, json!({"a": {"b": 1, "c": 3, "f": 4}, "d": [2]}));
        assert_eq!(lookup(&base, "a.f"), Some(&json!(4)));
        assert_eq!(lookup(&base, "a.x"), None);
    }

    #[test]
    fn long_comment_blocks_parse() {
        let mut text = String::new();
        for i in 0..45 {
            text.push_str(&format!(
                "# line {i} of a long comment block explaining a value\n"
            ));
        }
        text.push_str("image:\n");
        for i in 0..45 {
            text.push_str(&format!("  # nested comment {i}\n"));
        }
        text.push_str("  repository: registry.k8s.io/nfd/node-feature-discovery\n");
        let v = parse_values(&text).unwrap();
        assert_eq!(
            lookup(&v, "image.repository"),
            Some(&json!("registry.k8s.io/nfd/node-feature-discovery"))
        );
        assert_eq!(parse_values("").unwrap(), json!({}));
        assert!(parse_values("- a\n").is_err());
    }
}
