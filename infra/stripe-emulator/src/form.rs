//! Stripe's request encoding. Parameters arrive form-encoded with bracketed keys
//! (`items[0][price]=…`, `metadata[partner_id]=…`, `expand[]=…`, `lookup_keys[0]=…`), in the
//! body of a POST/DELETE or the query of a GET. They are parsed once, here, into a JSON tree of
//! strings so the handlers read nested parameters the way Stripe documents them.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::state::Metadata;

/// Parses a query string and a form body into one tree. Body keys win over query keys.
pub fn parse(query: Option<&str>, body: &[u8]) -> Value {
    let mut root = Map::new();
    let pairs = query.map(|q| form_urlencoded::parse(q.as_bytes())).into_iter().flatten();
    for (key, value) in pairs.chain(form_urlencoded::parse(body)) {
        insert(&mut root, &split_key(&key), value.into_owned());
    }
    arrayify(Value::Object(root))
}

/// `items[0][price]` → `["items", "0", "price"]`; `expand[]` → `["expand", ""]`.
fn split_key(key: &str) -> Vec<String> {
    let Some(open) = key.find('[') else { return vec![key.to_owned()] };
    let mut segments = vec![key[..open].to_owned()];
    let mut rest = &key[open..];
    while let Some(stripped) = rest.strip_prefix('[') {
        let Some(close) = stripped.find(']') else { break };
        segments.push(stripped[..close].to_owned());
        rest = &stripped[close + 1..];
    }
    segments
}

fn insert(node: &mut Map<String, Value>, segments: &[String], value: String) {
    let Some((first, rest)) = segments.split_first() else { return };
    // An empty segment (`expand[]`) appends: it takes the next free index.
    let key = if first.is_empty() { node.len().to_string() } else { first.clone() };
    if rest.is_empty() {
        node.insert(key, Value::String(value));
        return;
    }
    let child = node.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !child.is_object() {
        *child = Value::Object(Map::new());
    }
    if let Value::Object(map) = child {
        insert(map, rest, value);
    }
}

/// Objects whose keys are all indices become arrays, ordered by index.
fn arrayify(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let all_indices = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if all_indices {
                let mut entries: Vec<(usize, Value)> =
                    map.into_iter().map(|(k, v)| (k.parse().unwrap_or(0), arrayify(v))).collect();
                entries.sort_by_key(|(i, _)| *i);
                Value::Array(entries.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, arrayify(v))).collect())
            }
        }
        other => other,
    }
}

/// A view of one level of the parameter tree, remembering its Stripe parameter name
/// (`items[0]`) so errors can point at the exact parameter.
#[derive(Clone)]
pub struct Form<'a> {
    value: &'a Value,
    prefix: Option<String>,
}

static EMPTY: Value = Value::Null;

impl<'a> Form<'a> {
    pub fn new(value: &'a Value) -> Self {
        Form { value, prefix: None }
    }

    /// The full parameter name of `key` at this level, e.g. `items[0][price]`.
    pub fn name(&self, key: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}[{key}]"),
            None => key.to_owned(),
        }
    }

    /// This level's own parameter name, e.g. `items[0]`.
    pub fn param(&self) -> String {
        self.prefix.clone().unwrap_or_default()
    }

    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.value.get(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.raw(key).and_then(Value::as_str)
    }

    /// A string parameter where an empty value means "unset", as Stripe treats it.
    pub fn string(&self, key: &str) -> Option<String> {
        self.str(key).filter(|s| !s.is_empty()).map(str::to_owned)
    }

    pub fn required(&self, key: &str) -> Result<&'a str, ApiError> {
        self.str(key).filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing_param(&self.name(key)))
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.str(key) {
            None | Some("") => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid(format!("Invalid integer: {s}"), Some(self.name(key)))),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.str(key) {
            None | Some("") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(s) => Err(ApiError::invalid(format!("Invalid boolean: {s}"), Some(self.name(key)))),
        }
    }

    /// A list parameter (`expand[]=a&expand[]=b` or `lookup_keys[0]=a`); a single plain value
    /// counts as a one-element list.
    pub fn strings(&self, key: &str) -> Vec<String> {
        match self.raw(key) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// The nested forms of a list of hashes, e.g. each `items[i]`.
    pub fn each(&self, key: &str) -> Vec<Form<'a>> {
        match self.raw(key) {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, value)| Form { value, prefix: Some(format!("{}[{i}]", self.name(key))) })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A nested hash such as `recurring` or `subscription_data`.
    pub fn child(&self, key: &str) -> Form<'a> {
        Form { value: self.raw(key).unwrap_or(&EMPTY), prefix: Some(self.name(key)) }
    }

    /// The metadata change a request asks for, if any.
    pub fn metadata(&self, key: &str) -> Option<MetadataPatch> {
        match self.raw(key)? {
            Value::String(s) if s.is_empty() => Some(MetadataPatch::Clear),
            Value::Object(map) => Some(MetadataPatch::Set(
                map.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect(),
            )),
            _ => None,
        }
    }
}

/// Stripe's metadata update rules: `metadata=` clears every key, `metadata[k]=` (empty)
/// deletes one key, anything else sets it.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataPatch {
    Clear,
    Set(Vec<(String, String)>),
}

impl MetadataPatch {
    pub fn apply(&self, metadata: &mut Metadata) {
        match self {
            MetadataPatch::Clear => metadata.clear(),
            MetadataPatch::Set(pairs) => {
                for (k, v) in pairs {
                    if v.is_empty() {
                        metadata.remove(k);
                    } else {
                        metadata.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }

    pub fn into_metadata(self) -> Metadata {
        let mut metadata = Metadata::new();
        self.apply(&mut metadata);
        metadata
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_keys_lists_and_hashes() {
        let body = b"items%5B0%5D%5Bprice%5D=price_a&items%5B0%5D%5Bquantity%5D=2&items[1][price]=price_b\
&metadata[partner_id]=p1&expand[]=latest_invoice&expand[]=customer&lookup_keys[0]=gold";
        let v = parse(Some("limit=3"), body);
        assert_eq!(
            v,
            json!({
                "items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
                "metadata": {"partner_id": "p1"},
                "expand": ["latest_invoice", "customer"],
                "lookup_keys": ["gold"],
                "limit": "3",
            })
        );
    }

    #[test]
    fn indices_sort_numerically() {
        let v = parse(None, b"a[10]=x&a[2]=y");
        assert_eq!(v, json!({"a": ["y", "x"]}));
    }

    #[test]
    fn form_accessors_name_nested_params() {
        let v = parse(None, b"items[0][price]=p&items[0][quantity]=x&cancel_at_period_end=true&metadata=");
        let form = Form::new(&v);
        let items = form.each("items");
        assert_eq!(items[0].str("price"), Some("p"));
        let err = items[0].int("quantity").unwrap_err();
        assert_eq!(err.param.as_deref(), Some("items[0][quantity]"));
        assert_eq!(form.bool("cancel_at_period_end").unwrap(), Some(true));
        assert_eq!(form.metadata("metadata"), Some(MetadataPatch::Clear));
        assert_eq!(form.required("customer").unwrap_err().param.as_deref(), Some("customer"));
    }

    #[test]
    fn metadata_patch_rules() {
        let mut m = Metadata::new();
        m.insert("a".into(), "1".into());
        m.insert("b".into(), "2".into());
        MetadataPatch::Set(vec![("a".into(), String::new()), ("c".into(), "3".into())]).apply(&mut m);
        assert_eq!(m.keys().collect::<Vec<_>>(), vec!["b", "c"]);
        MetadataPatch::Clear.apply(&mut m);
        assert!(m.is_empty());
    }
}
