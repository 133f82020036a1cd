//! LIST: label and field selectors, `limit`/`continue` paging. A page is picked under the
//! world's lock (sharing the stored objects) and rendered to JSON after it is released.

use std::sync::Arc;

use serde_json::{Value, json};

use super::kinds::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::server::{Query, with_version};
use super::status::ApiError;
use super::store::gr;
use super::world::World;

/// One page of a LIST.
#[derive(Debug)]
pub struct Page {
    /// The objects, shared with the store.
    pub items: Vec<Arc<Value>>,
    /// The store's resourceVersion when the page was read.
    pub rv: u64,
    /// The continue token when more items match.
    pub continue_token: Option<String>,
    /// How many more items match (counted only for LISTs without selectors).
    pub remaining: usize,
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Picks the page a LIST asks for.
pub fn page(w: &World, rt: &ResourceType, ns: &str, q: &Query) -> Result<Page, ApiError> {
    let labels = LabelSelector::parse(
        q.get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
        &rt.kind,
    )?;
    let scope = if rt.namespaced && !ns.is_empty() {
        Some(ns)
    } else {
        None
    };
    // The token is the hex of the last key sent, `namespace/name`.
    let after = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(
            unhex(c)
                .and_then(|k| {
                    k.split_once('/')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                })
                .ok_or_else(|| ApiError::bad_request(format!("continue key is not valid: {c}")))?,
        ),
        None => None,
    };
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut remaining = 0usize;
    let key = gr(rt);
    let after_ref = after.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
    // Pods selected by node come from the pods-by-node index, not from a scan of every pod.
    let candidates: Box<dyn Iterator<Item = &Arc<Value>>> = match fields.required("spec.nodeName") {
        Some(node) if rt.group.is_empty() && rt.plural == "pods" => Box::new(
            w.store
                .pods_on(node)
                .filter(move |(ns, name)| {
                    scope.is_none_or(|s| s == ns)
                        && after_ref.is_none_or(|a| (ns.as_str(), name.as_str()) > a)
                })
                .filter_map(|(ns, name)| w.store.get_arc(&key, ns, name)),
        ),
        _ => w.store.iter_after(&key, scope, after_ref),
    };
    // With selectors, kube-apiserver does not count what is left (no remainingItemCount): the
    // scan stops at the first match after the page.
    let filtered = !labels.is_empty() || !fields.is_empty();
    let mut more = false;
    for o in candidates {
        if !labels.matches(o) || !fields.matches(o) {
            continue;
        }
        if items.len() < limit {
            items.push(o.clone());
        } else if filtered {
            more = true;
            break;
        } else {
            remaining += 1;
        }
    }
    let continue_token = (remaining > 0 || more).then(|| {
        let last = items.last().map(|o| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            )
        });
        hex(&last.unwrap_or_default())
    });
    Ok(Page {
        items,
        rv: w.store.rv(),
        continue_token,
        remaining,
    })
}

/// An object as JSON, with the apiVersion the request named.
pub fn object_json(rt: &ResourceType, o: &Value) -> String {
    if o["apiVersion"] == rt.api_version().as_str() || !o.is_object() {
        o.to_string()
    } else {
        with_version(rt, o.clone()).to_string()
    }
}

impl Page {
    fn metadata(&self) -> Value {
        let mut meta = json!({"resourceVersion": self.rv.to_string()});
        if let Some(c) = &self.continue_token {
            meta["continue"] = json!(c);
            if self.remaining > 0 {
                meta["remainingItemCount"] = json!(self.remaining);
            }
        }
        meta
    }

    /// The `XList` object.
    pub fn to_value(&self, rt: &ResourceType) -> Value {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|o| with_version(rt, (**o).clone()))
            .collect();
        json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": self.metadata(), "items": items})
    }

    /// The `XList` object as JSON, written item by item without copying the objects.
    pub fn to_json(&self, rt: &ResourceType) -> String {
        let mut out = String::with_capacity(256 + self.items.len() * 1024);
        out.push_str("{\"kind\":");
        out.push_str(&json!(format!("{}List", rt.kind)).to_string());
        out.push_str(",\"apiVersion\":");
        out.push_str(&json!(rt.api_version()).to_string());
        out.push_str(",\"metadata\":");
        out.push_str(&self.metadata().to_string());
        out.push_str(",\"items\":[");
        for (i, o) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&object_json(rt, o));
        }
        out.push_str("]}");
        out
    }
}
