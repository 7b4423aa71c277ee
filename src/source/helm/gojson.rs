//! JSON written the way Go's `encoding/json` writes it, so that the Helm config blob and
//! manifest ferry makes for a chart are byte for byte what `helm push` makes.
//!
//! Differences from serde_json that matter: `<`, `>`, `&`, U+2028 and U+2029 are escaped,
//! control characters use `\u00xx` (except `\b \f \n \r \t`), floats use Go's formats.
//! Objects are written in the order they hold: callers build struct fields in Go's field
//! order and maps with sorted keys, as Go does.

use serde_json::Value;

/// Writes `value` compactly, as Go's `json.Marshal` would.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_value(&mut out, value);
    out.into_bytes()
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&json_float(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// A JSON string with Go's escaping (HTML-safe).
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float64 as Go's encoder writes it: `'f'` format, or `'e'` outside [1e-6, 1e21), with
/// `e-07` tidied to `e-7`.
fn json_float(f: f64) -> String {
    if !f.is_finite() {
        // Go refuses these; YAML values cannot normally produce them here.
        return "null".to_string();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = go_exponent(&format!("{f:e}"));
        // Go tidies a single leading zero in a negative exponent.
        if let Some(pos) = s.find("e-0")
            && s.len() == pos + 4
        {
            return format!("{}e-{}", &s[..pos], &s[pos + 3..]);
        }
        s
    } else {
        format!("{f}")
    }
}

/// Rust's `1.5e7` / `1e-7` as Go writes exponents: `1.5e+07`, `1e-07`.
fn go_exponent(rust: &str) -> String {
    let (mantissa, exp) = rust.split_once('e').unwrap_or((rust, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// `strconv.FormatFloat(f, 'g', -1, 32)`: how sigs.k8s.io/yaml turns an unquoted YAML number
/// into a string field (`appVersion: 1.10` becomes `"1.1"`, `1e6` becomes `"1e+06"`).
pub fn go_float32_g(f: f64) -> String {
    let x = f as f32;
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sci = format!("{x:e}");
    let exp: i32 = sci
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    // Shortest formatting decides with precision 6, as Go does.
    if !(-4..6).contains(&exp) {
        go_exponent(&sci)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_as_go_escapes_them() {
        let mut s = String::new();
        write_string(&mut s, "a <b> & \u{2028}\"\\\n\u{1}\u{8}é");
        assert_eq!(s, r#""a \u003cb\u003e \u0026 \u2028\"\\\n\u0001\bé""#);
    }

    #[test]
    fn values() {
        let v = json!({"name": "x", "n": [1.5, 1, -2, 1e21, 1e-7, 0.5], "ok": true, "none": null});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"{"name":"x","n":[1.5,1,-2,1e+21,1e-7,0.5],"ok":true,"none":null}"#
        );
    }

    #[test]
    fn float32_g_as_helm_shows_unquoted_numbers() {
        // Seen with Helm v4: appVersion 1.10, keywords 1e6, 0.000001, 1.5e-7, 12345678.9,
        // annotations 3.0 and 100000000000000000000.
        assert_eq!(go_float32_g(1.10), "1.1");
        assert_eq!(go_float32_g(1e6), "1e+06");
        assert_eq!(go_float32_g(0.000001), "1e-06");
        assert_eq!(go_float32_g(1.5e-7), "1.5e-07");
        assert_eq!(go_float32_g(12345678.9), "1.2345679e+07");
        assert_eq!(go_float32_g(3.0), "3");
        assert_eq!(go_float32_g(1e20), "1e+20");
        assert_eq!(go_float32_g(123456.0), "123456");
        assert_eq!(go_float32_g(0.0001), "0.0001");
        assert_eq!(go_float32_g(-2.5), "-2.5");
    }
}
