//! `nodeReady`: the node's `Ready` condition, and no pressure.

use k8s_openapi::api::core::v1::Node;

use super::CheckError;

fn condition<'a>(node: &'a Node, kind: &str) -> Option<&'a str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.as_str())
}

/// `Ready` is `True` and no pressure condition is `True`.
pub fn node_ready(node: Option<&Node>) -> Result<(), CheckError> {
    let node = node.ok_or(CheckError::NodeNotObserved)?;
    if condition(node, "Ready") != Some("True") {
        return Err(CheckError::NodeNotReady);
    }
    for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        if condition(node, pressure) == Some("True") {
            return Err(CheckError::NodePressure {
                condition: pressure,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{
        super::testkit::{node, reason},
        *,
    };

    #[test]
    fn node_ready_needs_ready_and_no_pressure() {
        let calm = [
            ("MemoryPressure", "False"),
            ("DiskPressure", "False"),
            ("PIDPressure", "False"),
        ];
        let ready = |extra: &[(&'static str, &'static str)]| {
            let mut conditions = vec![("Ready", "True")];
            conditions.extend_from_slice(&calm);
            for (kind, status) in extra {
                conditions.retain(|(k, _)| k != kind);
                conditions.push((kind, status));
            }
            node(&conditions)
        };
        assert_eq!(reason(node_ready(Some(&ready(&[])))), Ok(()));
        assert_eq!(
            reason(node_ready(Some(&node(&[("Ready", "True")])))),
            Ok(())
        );
        assert_eq!(
            reason(node_ready(None)),
            Err("the node is not observed".to_owned())
        );
        for status in ["False", "Unknown"] {
            assert_eq!(
                reason(node_ready(Some(&ready(&[("Ready", status)])))),
                Err("Ready is not True".to_owned())
            );
        }
        assert_eq!(
            reason(node_ready(Some(&node(&[])))),
            Err("Ready is not True".to_owned())
        );
        for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert_eq!(
                reason(node_ready(Some(&ready(&[(pressure, "True")])))),
                Err(format!("{pressure} is True"))
            );
        }
    }
}
