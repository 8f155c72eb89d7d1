//! Label selectors, as Kubernetes evaluates them.

use std::collections::{BTreeMap, BTreeSet};

/// The labels of an object.
pub type Labels = BTreeMap<String, String>;

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
    pub fn from_labels(labels: &Labels) -> Self {
        let requirements = labels
            .iter()
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
