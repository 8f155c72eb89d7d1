//! The sandbox and the operator at the size of a big real cluster: 5,000 nodes and 50,000
//! pods (`examples/sandbox/scale-5000.yaml`).
//!
//! ```sh
//! cargo bench --bench scale
//! ```
//!
//! 1. Loading the scenario in this process until every pod is Running and Ready, and the
//!    resident memory then; a full paged list of every pod (pages of 500), in-process and
//!    over HTTP.
//! 2. A watch of every pod through `kube::runtime::watcher`: the initial list, then events as
//!    a Deployment scales and a pod is deleted.
//! 3. Requests per second the sandbox's API server answers, in-process and over HTTP.
//! 4. `patchpilot run` as its own process against `patchpilot sandbox --serve
//!    --without-operator` as another, while a node rollout runs: its resident memory.
//!
//! 5. Part 4 again on a real control plane of the same size (`SCALE_CLUSTER=DIR`, a cluster
//!    of `tests/cluster/up`; see `real.rs`), with the API server's and etcd's memory and the
//!    operator's requests per node from the real audit log. Not run unless asked for.
//!
//! Lines starting with `RESULT` are the figures; `PROBLEM` lines are failures to report.
//! Set `SCALE_PARTS` to a list like `1,2,3` or `4` or `5` to run only some parts, and
//! `SCALE_OPERATOR_WRAP` to a program that runs the operator of parts 4 and 5 (given its
//! command line), such as `heaptrack`.

mod inproc;
mod mem;
mod processes;
mod real;

use std::time::Instant;

/// The scenario.
pub const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/sandbox/scale-5000.yaml"
);
/// The `patchpilot` binary, built in the same profile as this benchmark.
pub const BIN: &str = env!("CARGO_BIN_EXE_patchpilot");
/// Nodes in the scenario.
pub const NODES: usize = 5_000;
/// Pods in the scenario.
pub const PODS: usize = 50_000;

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let parts = std::env::var("SCALE_PARTS").unwrap_or_else(|_| "1,2,3,4".into());
    let part = |n: &str| parts.split(',').any(|p| p.trim() == n);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let began = Instant::now();
    runtime.block_on(async {
        if part("1") || part("2") || part("3") {
            let loaded = inproc::load().await;
            if part("1") {
                inproc::full_paged_list(&loaded).await;
            }
            if part("2") {
                inproc::watch_all(&loaded).await;
            }
            if part("3") {
                inproc::requests_per_second(&loaded).await;
            }
            // Free the cores and memory for the two processes of part 4.
            drop(loaded);
        }
        if part("4") {
            processes::operator_memory().await;
        }
        if part("5") {
            real::operator_on_real_control_plane().await;
        }
    });
    println!("\nscale benchmark done in {:.1?}", began.elapsed());
    // Dropping the runtime waits for blocking tasks; leave at once.
    std::process::exit(0);
}
