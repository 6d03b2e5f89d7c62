//! The template as JSON in CloudFormation's long form: `!Ref X` becomes `{"Ref": "X"}`,
//! `!GetAtt A.B` `{"Fn::GetAtt": ["A", "B"]}`, any other `!Fn` `{"Fn::Fn": ...}`. YAML tags are
//! kept by `serde_norway`, so the template stays in the short form people read.

use serde_json::{Map, Value};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Template {
    pub json: Value,
    /// The file as written, for checks on comments.
    pub text: String,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot be read: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let yaml: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
        Ok(Template {
            json: long_form(yaml)?,
            text: text.to_string(),
        })
    }

    /// `Resources` as (logical id, resource) pairs.
    pub fn resources(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.json["Resources"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.iter())
    }

    pub fn resource(&self, id: &str) -> &Value {
        let r = &self.json["Resources"][id];
        assert!(!r.is_null(), "the template has no resource {id}");
        r
    }

    pub fn resources_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        self.resources().filter(move |(_, r)| r["Type"] == kind)
    }

    pub fn is_parameter(&self, name: &str) -> bool {
        self.json["Parameters"].get(name).is_some()
    }

    /// The logical id of the role a function runs with (`Role: !GetAtt X.Arn`).
    pub fn role_of(&self, function_id: &str) -> String {
        let role = &self.resource(function_id)["Properties"]["Role"];
        match getatt(role) {
            Some((id, "Arn")) => id.to_string(),
            _ => panic!("{function_id}'s Role must be !GetAtt <role>.Arn, found {role}"),
        }
    }

    /// Every statement of a role's inline policies. Panics on policies attached any other way
    /// (managed policies, `AWS::IAM::Policy`), which the least-privilege checks would not see.
    pub fn role_statements(&self, role_id: &str) -> Vec<Value> {
        let role = self.resource(role_id);
        assert_eq!(role["Type"], "AWS::IAM::Role", "{role_id} is not a role");
        assert!(
            role["Properties"].get("ManagedPolicyArns").is_none(),
            "{role_id} has managed policies: grant actions inline so the test can check them"
        );
        for (id, r) in self.resources() {
            if r["Type"] == "AWS::IAM::Policy" || r["Type"] == "AWS::IAM::ManagedPolicy" {
                panic!("{id}: attach policies inline on the role, so the IAM test sees them");
            }
        }
        role["Properties"]["Policies"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| statements(&p["PolicyDocument"]))
            .collect()
    }
}

/// A policy document's statements (one object or a list).
pub fn statements(doc: &Value) -> Vec<Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        Value::Object(_) => vec![doc["Statement"].clone()],
        _ => Vec::new(),
    }
}

/// A statement's `Action` (string or list) as a list.
pub fn actions(statement: &Value) -> Vec<String> {
    as_list(&statement["Action"])
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// A statement's `Resource` (one value or a list) as a list.
pub fn resources(statement: &Value) -> Vec<Value> {
    as_list(&statement["Resource"])
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// `{"Ref": "X"}` → `X`.
pub fn reference(v: &Value) -> Option<&str> {
    v.as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.get("Ref"))
        .and_then(Value::as_str)
}

/// `{"Fn::GetAtt": ["A", "B"]}` → `(A, B)`.
pub fn getatt(v: &Value) -> Option<(&str, &str)> {
    let a = v.get("Fn::GetAtt")?.as_array()?;
    Some((a.first()?.as_str()?, a.get(1)?.as_str()?))
}

/// The text of `{"Fn::Sub": "..."}` (or of its first element in the list form).
pub fn sub_text(v: &Value) -> Option<&str> {
    match v.get("Fn::Sub")? {
        Value::String(s) => Some(s),
        Value::Array(a) => a.first()?.as_str(),
        _ => None,
    }
}

/// Whether a value names resource `id`: `!Ref id`, `!GetAtt id.*`, or `${id}`/`${id.Arn}` in a
/// `!Sub`.
pub fn mentions(v: &Value, id: &str) -> bool {
    reference(v) == Some(id)
        || getatt(v).is_some_and(|(r, _)| r == id)
        || sub_text(v)
            .is_some_and(|s| s.contains(&format!("${{{id}}}")) || s.contains(&format!("${{{id}.")))
}

fn long_form(v: serde_norway::Value) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).map_err(|e| e.to_string())?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            Value::Array(items.into_iter().map(long_form).collect::<Result<_, _>>()?)
        }
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    other => return Err(format!("a mapping key that is not a scalar: {other:?}")),
                };
                out.insert(key, long_form(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!').to_string();
            let inner = long_form(t.value)?;
            let (key, value) = match name.as_str() {
                "Ref" | "Condition" => (name.clone(), inner),
                "GetAtt" => {
                    let value = match inner {
                        Value::String(s) => {
                            let (res, attr) = s
                                .split_once('.')
                                .ok_or_else(|| format!("!GetAtt {s} needs Resource.Attribute"))?;
                            Value::Array(vec![res.into(), attr.into()])
                        }
                        other => other,
                    };
                    ("Fn::GetAtt".to_string(), value)
                }
                _ => (format!("Fn::{name}"), inner),
            };
            let mut m = Map::new();
            m.insert(key, value);
            Value::Object(m)
        }
    })
}
