//! The engine's storage contract suite against the remote-store backend on a real
//! 3-node Garage cluster (one cluster for the whole suite; a fresh prefix per store).

#[path = "../../engine/tests/contract.rs"]
#[macro_use]
#[allow(dead_code, unused_imports)]
mod contract;
mod common;

use std::sync::OnceLock;

use bpv_engine::store::Store;
use bpv_sync::store::RemoteStore;
use bpv_sync::{LinkConfig, Remote};
use contract::*;

fn cluster() -> &'static common::Garage {
    static CLUSTER: OnceLock<common::Garage> = OnceLock::new();
    CLUSTER.get_or_init(common::Garage::start)
}

fn garage_store() -> RemoteStore {
    let g = cluster();
    let prefix = format!("contract/{:016x}", rand::random::<u64>());
    let mut link = LinkConfig::new(g.endpoints.clone(), &g.bucket, &prefix, Some("contract".into())).unwrap();
    link.region = "garage".into();
    RemoteStore::new(Remote::open(&link, &g.creds).unwrap()).unwrap()
}

contract_suite! {
    garage => Harness::new(garage_store);
}

#[test]
fn the_store_says_what_it_cannot_do() {
    let s = garage_store();
    let caps = s.capabilities();
    assert!(!caps.batch && !caps.compress && !caps.expiration);
    assert_eq!(s.batch(&[]).unwrap_err().code(), "unsupported");
}
