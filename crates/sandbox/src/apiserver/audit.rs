//! The audit log: every request every client made, one `audit.k8s.io/v1` Event a line at
//! level `Request`, with timestamps in the sandbox's virtual time.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use serde_json::{Value, json};

/// What one request did, for the log.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    /// The request URI, path and query.
    pub uri: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
    /// The client.
    pub user: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
    /// `objectRef`, if the request was for objects.
    pub object_ref: Option<Value>,
    /// The response code.
    pub code: u16,
    /// The response's reason and message, for failures.
    pub failure: Option<(String, String)>,
    /// The request body of a write.
    pub request_object: Option<Value>,
    /// When the request arrived.
    pub received: String,
    /// When the response was complete.
    pub completed: String,
}

/// Where audit events go.
pub struct Audit {
    out: Mutex<Box<dyn Write + Send>>,
    ids: AtomicU64,
}

impl Audit {
    /// Keeps audit events in memory, where `log` reads them back.
    pub fn in_memory(log: &MemoryLog) -> Self {
        Self::to_writer(Box::new(log.clone()))
    }

    /// Writes audit events to `path`.
    pub fn to_file(path: &Path) -> io::Result<Self> {
        Ok(Self::to_writer(Box::new(BufWriter::new(File::create(
            path,
        )?))))
    }

    /// Writes audit events to `out`.
    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        Audit {
            out: Mutex::new(out),
            ids: AtomicU64::new(0),
        }
    }

    /// Records one request.
    pub fn record(&self, entry: &Entry) {
        let id = self.ids.fetch_add(1, Ordering::Relaxed) + 1;
        let mut event = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Request",
            "auditID": format!("{:08x}-0000-4000-8000-{id:012x}", id >> 8),
            "stage": "ResponseComplete",
            "requestURI": entry.uri,
            "verb": entry.verb,
            "user": {"username": entry.user, "groups": ["system:authenticated"]},
            "sourceIPs": ["127.0.0.1"],
            "userAgent": entry.user_agent,
            "responseStatus": {"metadata": {}, "code": entry.code},
            "requestReceivedTimestamp": entry.received,
            "stageTimestamp": entry.completed,
        });
        if let Some(object_ref) = &entry.object_ref {
            event["objectRef"] = object_ref.clone();
        }
        if let Some((reason, message)) = &entry.failure {
            event["responseStatus"]["status"] = json!("Failure");
            event["responseStatus"]["reason"] = json!(reason);
            event["responseStatus"]["message"] = json!(message);
        }
        if let Some(object) = &entry.request_object {
            event["requestObject"] = object.clone();
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // Losing an audit line must not fail the request it describes.
        let _ = writeln!(out, "{event}").and_then(|()| out.flush());
    }
}

/// An audit log kept in memory, for tests that judge a run by it.
#[derive(Clone, Default)]
pub struct MemoryLog(Arc<Mutex<Vec<u8>>>);

impl MemoryLog {
    /// The events written so far, in order.
    pub fn events(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl Write for MemoryLog {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
