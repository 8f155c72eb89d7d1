//! A watch whose client never reads it.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ListParams, PostParams, WatchEvent, WatchParams},
    client::Body,
};

use crate::conformance::{Backend, config_map};

/// How many ConfigMaps [`a_watch_nobody_reads_holds_up_no_one`] writes, and how big.
const FLOOD: usize = 1_500;
const FLOOD_BYTES: usize = 16 * 1024;

/// A watch whose client never reads it, while thousands of big objects are written: every
/// other client's lists, writes and watches are still answered promptly.
pub async fn a_watch_nobody_reads_holds_up_no_one(backend: &impl Backend) {
    let client = backend.client();
    let namespace = backend.namespace();
    let collection = format!("/api/v1/namespaces/{namespace}/configmaps");
    // The response is held, its body never read.
    let request = http::Request::get(format!("{collection}?watch=true"))
        .body(Body::from(Vec::new()))
        .unwrap();
    let stuck = client.send(request).await.unwrap();
    assert_eq!(stuck.status(), 200);

    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let data = "x".repeat(FLOOD_BYTES);
    let writes = futures::stream::iter(0..FLOOD).map(|i| {
        let maps = maps.clone();
        let mut map = config_map(&format!("flood-{i}"), &[]);
        map.data = Some([("data".to_owned(), data.clone())].into());
        async move { maps.create(&PostParams::default(), &map).await.map(|_| ()) }
    });
    writes
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();

    let prompt = Duration::from_secs(20);
    let started = Instant::now();
    let listed = tokio::time::timeout(
        prompt,
        maps.list_metadata(&ListParams::default().limit(500)),
    )
    .await
    .expect("a list answered while a watch is stuck")
    .unwrap();
    assert_eq!(listed.items.len(), 500);
    let rv = listed.metadata.resource_version.unwrap();
    let mut events = maps
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    maps.create(&PostParams::default(), &config_map("after", &[]))
        .await
        .unwrap();
    let event = tokio::time::timeout(prompt, events.try_next())
        .await
        .expect("another watch answered while a watch is stuck")
        .unwrap()
        .unwrap();
    match event {
        WatchEvent::Added(map) => assert_eq!(map.metadata.name.as_deref(), Some("after")),
        other => panic!("not the new ConfigMap: {other:?}"),
    }
    assert!(
        started.elapsed() < prompt,
        "others were served in {:?}",
        started.elapsed()
    );
    drop(stuck);
}
