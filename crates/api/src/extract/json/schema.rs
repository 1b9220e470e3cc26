//! The structural part of a body's documented schema (types, `null`,
//! required and unknown fields, allowed values) checked on the parsed JSON,
//! so a 422 names every field at fault at once and what the OpenAPI document
//! says a body may be is exactly what the extractor accepts. Lengths,
//! patterns and formats stay with the domain rules, which word them.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::FieldError;

/// Bounds the walk through `$ref` and `oneOf` chains (a recursive schema
/// could otherwise loop); JSON nesting is already bounded by the parser.
const MAX_DEPTH: usize = 256;
/// A body of thousands of unknown keys gets a bounded answer.
const MAX_ERRORS: usize = 32;

/// One request body type's schema as the OpenAPI document serialises it,
/// with the schemas it refers to.
#[derive(Debug)]
pub struct BodySchema {
    root: Value,
    components: HashMap<String, Value>,
}

/// Built once per body type: the generated schema does not change.
static SCHEMAS: LazyLock<RwLock<HashMap<TypeId, Arc<BodySchema>>>> = LazyLock::new(RwLock::default);

/// The schema of `T`, from its `ToSchema` derive.
pub fn of<T: ToSchema + 'static>() -> Arc<BodySchema> {
    let id = TypeId::of::<T>();
    let known = SCHEMAS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .cloned();
    if let Some(schema) = known {
        return schema;
    }
    let schema = Arc::new(BodySchema::of::<T>());
    SCHEMAS
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(id)
        .or_insert(schema)
        .clone()
}

impl BodySchema {
    fn of<T: ToSchema>() -> Self {
        // A schema that cannot be serialised checks nothing (`true`): serde
        // still refuses what does not fit the type.
        let root = serde_json::to_value(T::schema()).unwrap_or(Value::Bool(true));
        let mut referenced = Vec::new();
        T::schemas(&mut referenced);
        let components = referenced
            .into_iter()
            .filter_map(|(name, schema)| Some((name, serde_json::to_value(schema).ok()?)))
            .collect();
        Self { root, components }
    }

    /// Every structural problem of `value`, each naming its field (dotted,
    /// `[i]` for array items) and never quoting the submitted value.
    pub fn check(&self, value: &Value) -> Vec<FieldError> {
        let mut walk = Walk {
            schema: self,
            errors: Vec::new(),
        };
        walk.value(&self.root, value, "", 0);
        walk.errors
    }

    /// Follows `$ref`s to the schema they name; an unknown name checks
    /// nothing.
    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..MAX_DEPTH {
            let Some(name) = schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            else {
                return schema;
            };
            match self.components.get(name) {
                Some(next) => schema = next,
                None => return &Value::Bool(true),
            }
        }
        &Value::Bool(true)
    }
}

struct Walk<'s> {
    schema: &'s BodySchema,
    errors: Vec<FieldError>,
}

impl Walk<'_> {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        if !self.is_full() {
            let field = if path.is_empty() { "body" } else { path };
            self.errors.push(FieldError::new(field, message));
        }
    }

    fn is_full(&self) -> bool {
        self.errors.len() >= MAX_ERRORS
    }

    fn value(&mut self, schema: &Value, value: &Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH || self.is_full() {
            return;
        }
        let schema = self.schema.resolve(schema);
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                self.alternatives(branches, value, path, depth);
            }
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for branch in all {
                self.value(branch, value, path, depth + 1);
            }
        }
        if !accepts_kind(schema, value) {
            let message = allowed_values(schema)
                .unwrap_or_else(|| format!("must be {}", describe_types(schema)));
            self.push(path, message);
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let message = allowed_values(schema).unwrap_or_default();
            self.push(path, message);
            return;
        }
        match value {
            Value::Object(members) => self.object(schema, members, path, depth),
            Value::Array(items) => {
                if let Some(item) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        if self.is_full() {
                            break;
                        }
                        self.value(item, v, &format!("{path}[{i}]"), depth + 1);
                    }
                }
            }
            _ => {}
        }
    }

    fn object(&mut self, schema: &Value, members: &Map<String, Value>, path: &str, depth: usize) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let required = schema.get("required").and_then(Value::as_array);
        for name in required.into_iter().flatten().filter_map(Value::as_str) {
            if !members.contains_key(name) {
                self.push(&join(path, name), "is required");
            }
        }
        for (key, member) in members {
            if self.is_full() {
                break;
            }
            let field = join(path, key);
            match (
                properties.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(property), _) => self.value(property, member, &field, depth + 1),
                (None, Some(Value::Bool(false))) => self.push(&field, "is not a recognised field"),
                (None, Some(extra @ Value::Object(_))) => {
                    self.value(extra, member, &field, depth + 1);
                }
                (None, _) => {}
            }
        }
    }

    /// `oneOf`/`anyOf` (how an optional nested type is documented): fine
    /// when a branch fits; otherwise the problems of the one branch of the
    /// value's kind, or one sentence naming what would fit.
    fn alternatives(&mut self, branches: &[Value], value: &Value, path: &str, depth: usize) {
        let mut of_kind = Vec::new();
        for branch in branches {
            let mut trial = Walk {
                schema: self.schema,
                errors: Vec::new(),
            };
            trial.value(branch, value, path, depth + 1);
            if trial.errors.is_empty() {
                return;
            }
            if accepts_kind(self.schema.resolve(branch), value) {
                of_kind.push(trial.errors);
            }
        }
        if let [errors] = of_kind.as_mut_slice() {
            errors.truncate(MAX_ERRORS.saturating_sub(self.errors.len()));
            self.errors.append(errors);
            return;
        }
        let kinds: Vec<String> = branches
            .iter()
            .map(|b| describe_types(self.schema.resolve(b)))
            .collect();
        self.push(path, format!("must be {}", kinds.join(" or ")));
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// The JSON Schema type names `schema` allows (none: any).
fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn accepts_kind(schema: &Value, value: &Value) -> bool {
    if matches!(schema, Value::Bool(false)) {
        return false;
    }
    let types = types(schema);
    types.is_empty()
        || types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            // As serde reads integers: `1.0` is not one.
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        })
}

/// "a string", "a string or null", … for the types `schema` allows.
fn describe_types(schema: &Value) -> String {
    let names: Vec<&str> = types(schema)
        .into_iter()
        .map(|t| match t {
            "null" => "null",
            "boolean" => "a boolean",
            "integer" => "an integer",
            "number" => "a number",
            "string" => "a string",
            "array" => "an array",
            "object" => "an object",
            _ => "another type",
        })
        .collect();
    if names.is_empty() {
        "another value".to_owned()
    } else {
        names.join(" or ")
    }
}

/// "must be one of `a`, `b`" for an `enum` (the list is the schema's, not
/// the input's).
fn allowed_values(schema: &Value) -> Option<String> {
    let allowed = schema.get("enum")?.as_array()?;
    let names: Vec<String> = allowed
        .iter()
        .map(|v| match v {
            Value::String(s) => format!("`{s}`"),
            other => format!("`{other}`"),
        })
        .collect();
    Some(format!("must be one of {}", names.join(", ")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
        #[serde(default)]
        #[schema(nullable = false)]
        flag: Option<bool>,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        kind: Option<Kind>,
        tags: Vec<String>,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Kind {
        Plain,
        Fancy,
    }

    #[derive(Debug, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        on: bool,
    }

    fn problems(body: Value) -> Vec<(String, String)> {
        let mut found: Vec<_> = of::<Body>()
            .check(&body)
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect();
        found.sort();
        found
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = expected
            .iter()
            .map(|(f, m)| ((*f).to_owned(), (*m).to_owned()))
            .collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn every_missing_required_field_is_named() {
        assert_eq!(
            problems(json!({})),
            pairs(&[
                ("count", "is required"),
                ("name", "is required"),
                ("tags", "is required"),
            ])
        );
    }

    #[test]
    fn every_wrong_type_and_unknown_field_is_named_without_its_value() {
        let body = json!({
            "name": null,
            "count": "SECRET",
            "flag": null,
            "note": null,
            "kind": "SECRET",
            "tags": [1, "ok", {"SECRET": 1}],
            "inner": {"on": "SECRET"},
            "SECRET-KEY": 1,
        });
        let found = problems(body);
        assert_eq!(
            found,
            pairs(&[
                ("SECRET-KEY", "is not a recognised field"),
                ("count", "must be an integer"),
                ("flag", "must be a boolean"),
                ("inner.on", "must be a boolean"),
                ("kind", "must be one of `plain`, `fancy`"),
                ("name", "must be a string"),
                ("tags[0]", "must be a string"),
                ("tags[2]", "must be a string"),
            ])
        );
        let messages: Vec<&String> = found.iter().map(|(_, m)| m).collect();
        assert!(!format!("{messages:?}").contains("SECRET"));
    }

    #[test]
    fn what_the_schema_allows_passes() {
        let body = json!({
            "name": "a",
            "count": 3,
            "note": null,
            "kind": null,
            "tags": [],
            "inner": null,
        });
        assert_eq!(problems(body), []);
        let full = json!({
            "name": "a", "count": 0, "flag": true, "note": "n", "kind": "fancy",
            "tags": ["x"], "inner": {"on": false},
        });
        assert_eq!(problems(full), []);
    }

    #[test]
    fn a_value_of_no_documented_kind_names_the_kinds() {
        assert_eq!(
            problems(json!({"name": "a", "count": 1, "tags": [], "inner": 5, "kind": 1.5})),
            pairs(&[
                ("inner", "must be null or an object"),
                ("kind", "must be null or a string"),
            ])
        );
        assert_eq!(problems(json!([])), pairs(&[("body", "must be an object")]));
    }

    #[test]
    fn the_answer_is_bounded() {
        let mut body = Map::new();
        for i in 0..1000 {
            body.insert(format!("k{i}"), Value::Null);
        }
        assert_eq!(of::<Body>().check(&Value::Object(body)).len(), MAX_ERRORS);
        let items = json!({"name": "a", "count": 1, "tags": vec![1; 100_000]});
        assert_eq!(of::<Body>().check(&items).len(), MAX_ERRORS);
    }
}
