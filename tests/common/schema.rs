//! Checks a request body against the Platform API hyper-schema kept in
//! `fixtures/heroku/platform-api-schema.json`: finds the link whose method
//! and href match the request, and validates the body against that link's
//! `schema` (draft 4, with the schema's own definitions).

use serde_json::{json, Value};

pub struct PlatformSchema {
    root: Value,
    links: Vec<(String, Vec<Segment>, Value)>,
}

fn strip_meta(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("$schema");
            map.values_mut().for_each(strip_meta);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_meta),
        _ => {}
    }
}

enum Segment {
    Fixed(String),
    Variable,
}

fn matches(segments: &[Segment], path: &str) -> bool {
    let parts: Vec<&str> = path.split('?').next().unwrap_or("").split('/').collect();
    parts.len() == segments.len()
        && segments.iter().zip(parts).all(|(s, p)| match s {
            Segment::Fixed(f) => f == p,
            Segment::Variable => !p.is_empty(),
        })
}

impl PlatformSchema {
    pub fn load() -> PlatformSchema {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/heroku/platform-api-schema.json"
        );
        let text = std::fs::read_to_string(path).expect("schema fixture");
        let mut root: Value = serde_json::from_str(&text).expect("schema is JSON");
        // Nested definitions name the hyper-schema meta-schema, which a
        // validator does not know; the keywords used are draft 4's.
        strip_meta(&mut root);
        let mut links = Vec::new();
        for def in root["definitions"]
            .as_object()
            .expect("definitions")
            .values()
        {
            for link in def["links"].as_array().into_iter().flatten() {
                let (Some(method), Some(href)) = (link["method"].as_str(), link["href"].as_str())
                else {
                    continue;
                };
                let segments = href
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            Segment::Variable
                        } else {
                            Segment::Fixed(s.to_string())
                        }
                    })
                    .collect();
                links.push((method.to_string(), segments, link["schema"].clone()));
            }
        }
        PlatformSchema { root, links }
    }

    /// Validate `body` sent as `method path`; Err names what is wrong.
    /// Paths outside the Platform API (the Data API's `/client/...`) are
    /// not in this schema: `Ok(false)`.
    pub fn check(&self, method: &str, path: &str, body: &Value) -> Result<bool, String> {
        if path.starts_with("/client/") {
            return Ok(false);
        }
        let matches: Vec<&Value> = self
            .links
            .iter()
            .filter(|(m, segs, _)| m.eq_ignore_ascii_case(method) && matches(segs, path))
            .map(|(_, _, s)| s)
            .collect();
        let link_schema = match matches.as_slice() {
            [] => return Err(format!("no Platform API link for {method} {path}")),
            [one] => *one,
            many => {
                return Err(format!(
                    "{} Platform API links match {method} {path}",
                    many.len()
                ))
            }
        };
        if link_schema.is_null() {
            return if body.is_null() || body == &json!({}) {
                Ok(true)
            } else {
                Err(format!("{method} {path} takes no body, got {body}"))
            };
        }
        let wrapper = json!({
            "definitions": self.root["definitions"].clone(),
            "allOf": [link_schema],
        });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .build(&wrapper)
            .map_err(|e| format!("schema does not compile: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        if errors.is_empty() {
            Ok(true)
        } else {
            Err(format!(
                "{method} {path} body {body} is invalid: {}",
                errors.join("; ")
            ))
        }
    }
}
