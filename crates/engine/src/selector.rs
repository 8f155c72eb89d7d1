//! Label selectors, as Kubernetes evaluates them.

use std::collections::{BTreeMap, BTreeSet};

/// The labels of an object: keys and their values, in the order of the keys, each key once.
///
/// A map with the lookups a selector makes, kept as one sorted slice: the operator holds the
/// labels of every node and workload it may target, an object has a handful of them, and a
/// `BTreeMap` takes a node of eleven slots (about 540 bytes) for one label.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Box<[(String, String)]>);

impl Labels {
    /// No labels.
    pub fn new() -> Self {
        Labels::default()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&String> {
        let at = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        Some(&self.0[at].1)
    }

    /// Whether `key` is there.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The keys and values, in the order of the keys.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As a `BTreeMap`, for an API object.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }
}

/// Like a map's: a key given twice keeps its last value.
impl FromIterator<(String, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        // Stable: of equal keys, the last given stays last, and is the one kept.
        pairs.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut kept: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match kept.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => kept.push(pair),
            }
        }
        Labels(kept.into_boxed_slice())
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Self {
        // Sorted and unique already.
        Labels(map.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// The value of a key that is there; like a map's, it panics on one that is not.
impl std::ops::Index<&str> for Labels {
    type Output = String;
    fn index(&self, key: &str) -> &String {
        self.get(key)
            .unwrap_or_else(|| panic!("no label {key:?} among {self:?}"))
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl serde::Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Labels;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of labels")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Labels, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(pairs.into_iter().collect())
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// A parsed label selector: `matchLabels` and `matchExpressions`, all of which must hold.
/// The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// One requirement on one label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
}

/// How a requirement tests its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operator {
    /// The label is present with one of the values.
    In(BTreeSet<String>),
    /// The label is absent, or present with none of the values.
    NotIn(BTreeSet<String>),
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// Why a selector expression is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The operator is not one Kubernetes knows.
    #[error("operator {0:?} is not one of In, NotIn, Exists, DoesNotExist")]
    UnknownOperator(String),
    /// `In` and `NotIn` need values.
    #[error("operator {0} needs at least one value")]
    MissingValues(&'static str),
    /// `Exists` and `DoesNotExist` take no values.
    #[error("operator {0} takes no values")]
    UnexpectedValues(&'static str),
    /// The key is empty.
    #[error("key must not be empty")]
    EmptyKey,
}

impl Selector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Selector::default()
    }

    /// A selector from `matchLabels`.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let requirements = labels
            .into_iter()
            .map(|(key, value)| Requirement {
                key: key.clone(),
                operator: Operator::In(BTreeSet::from([value.clone()])),
            })
            .collect();
        Selector { requirements }
    }

    /// Adds a `matchExpressions` entry, checking it as the API server does.
    pub fn with_expression(
        mut self,
        key: &str,
        operator: &str,
        values: &[String],
    ) -> Result<Self, SelectorError> {
        if key.is_empty() {
            return Err(SelectorError::EmptyKey);
        }
        let set: BTreeSet<String> = values.iter().cloned().collect();
        let operator = match operator {
            "In" | "NotIn" if set.is_empty() => {
                return Err(SelectorError::MissingValues(if operator == "In" {
                    "In"
                } else {
                    "NotIn"
                }));
            }
            "In" => Operator::In(set),
            "NotIn" => Operator::NotIn(set),
            "Exists" | "DoesNotExist" if !set.is_empty() => {
                return Err(SelectorError::UnexpectedValues(if operator == "Exists" {
                    "Exists"
                } else {
                    "DoesNotExist"
                }));
            }
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => return Err(SelectorError::UnknownOperator(other.to_owned())),
        };
        self.requirements.push(Requirement {
            key: key.to_owned(),
            operator,
        });
        Ok(self)
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|requirement| {
            let value = labels.get(&requirement.key);
            match &requirement.operator {
                Operator::In(values) => value.is_some_and(|v| values.contains(v)),
                Operator::NotIn(values) => value.is_none_or(|v| !values.contains(v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
    }

    /// Whether this selector matches everything.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn values(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Labels answer as the map they replace: each key once with its last value, in the
    /// order of the keys, the same JSON.
    #[test]
    fn labels_answer_as_a_map() {
        let pairs = [
            ("zone", "b"),
            ("app", "web"),
            ("zone", "a"),
            ("", "x"),
            ("tier", ""),
        ];
        let ours = labels(&pairs);
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(ours.iter().eq(map.iter()));
        assert_eq!(ours.len(), 4);
        for key in ["zone", "app", "", "tier", "missing", "zon", "zonee"] {
            assert_eq!(ours.get(key), map.get(key), "{key}");
            assert_eq!(ours.contains_key(key), map.contains_key(key), "{key}");
        }
        assert_eq!(ours["zone"], "a");
        assert_eq!(Labels::from(map.clone()), ours);
        assert_eq!(ours.to_map(), map);
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        let read: Labels = serde_json::from_str(
            r#"{"zone": "b", "app": "web", "zone": "a", "": "x", "tier": ""}"#,
        )
        .unwrap();
        assert_eq!(read, ours);
        assert_eq!(format!("{ours:?}"), format!("{map:?}"));
        assert!(Labels::new().is_empty() && Labels::new().get("a").is_none());
    }

    #[test]
    fn every_operator() {
        let node = labels(&[("role", "worker"), ("zone", "a")]);
        let none = Selector::everything();
        assert!(none.matches(&node) && none.matches(&Labels::new()));
        let expr = |key, op, v: &[&str]| {
            Selector::everything()
                .with_expression(key, op, &values(v))
                .unwrap()
        };
        assert!(expr("zone", "In", &["a", "b"]).matches(&node));
        assert!(!expr("zone", "In", &["b"]).matches(&node));
        assert!(!expr("missing", "In", &["a"]).matches(&node));
        assert!(expr("zone", "NotIn", &["b"]).matches(&node));
        assert!(!expr("zone", "NotIn", &["a"]).matches(&node));
        assert!(expr("missing", "NotIn", &["a"]).matches(&node));
        assert!(expr("role", "Exists", &[]).matches(&node));
        assert!(!expr("missing", "Exists", &[]).matches(&node));
        assert!(expr("missing", "DoesNotExist", &[]).matches(&node));
        assert!(!expr("role", "DoesNotExist", &[]).matches(&node));
        let both = Selector::from_labels(&labels(&[("role", "worker")]))
            .with_expression("zone", "In", &values(&["b"]))
            .unwrap();
        assert!(!both.matches(&node), "all requirements must hold");
        assert!(Selector::from_labels(&labels(&[("role", "")])).matches(&labels(&[("role", "")])));
    }

    #[test]
    fn invalid_expressions() {
        let add = |op, v: &[&str]| Selector::everything().with_expression("k", op, &values(v));
        assert_eq!(
            add("in", &["a"]),
            Err(SelectorError::UnknownOperator("in".into()))
        );
        assert_eq!(add("In", &[]), Err(SelectorError::MissingValues("In")));
        assert_eq!(
            add("Exists", &["a"]),
            Err(SelectorError::UnexpectedValues("Exists"))
        );
        assert_eq!(
            Selector::everything().with_expression("", "Exists", &[]),
            Err(SelectorError::EmptyKey)
        );
    }
}
