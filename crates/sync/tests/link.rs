//! Linking as the app and the CLI do it (`bpv_sync::link`), against a real 3-node Garage
//! cluster: keys handed over end up in the credential store (never in the 0600 file),
//! a link that fails its check is not kept, the status needs no network, cancel stops a
//! sync with its changes still queued, and unlinking removes the link's own credential.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bpv_engine::library::BlueprintSave;
use bpv_engine::secrets::{Secrets, SecretsOptions};
use bpv_sync::link::{self, LinkKeys, LinkRequest};
use bpv_sync::{Credentials, Syncer};
use common::{Garage, open_lib, yaml};

fn request(g: &Garage, endpoints: Vec<String>, prefix: &str) -> LinkRequest {
    LinkRequest {
        endpoints,
        bucket: g.bucket.clone(),
        prefix: prefix.into(),
        region: "garage".into(),
        path_style: true,
        device_name: Some("laptop".into()),
        interval_secs: 30,
    }
}

#[test]
fn link_store_keys_in_the_keychain_status_cancel_unlink() {
    // The sealed-file credential store: a real store that works without a desktop session.
    // SAFETY: the only test in this binary; set before any thread reads the environment.
    unsafe {
        std::env::set_var("BPV_CREDENTIAL_STORE", "file");
        std::env::set_var("BPV_CREDENTIALS_PASSPHRASE", "a long test passphrase");
    }
    let g = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    let lib = open_lib(&dir.path().join("lib"), &dir.path().join("data"));

    // Not linked: a status without network or keys.
    let status = link::status_of(&lib).unwrap();
    assert!(!status.linked);
    assert_eq!(status.state, "unlinked");

    // Test connection: wrong keys are refused, a dead endpoint is unreachable, good keys pass.
    let wrong = Credentials { access_key_id: g.creds.access_key_id.clone(), secret_access_key: "nope".into() };
    let e = link::test_connection(&request(&g, g.endpoints.clone(), "app"), &wrong).unwrap_err();
    assert_eq!(e.code(), "remote_denied", "{e}");
    let e = link::test_connection(&request(&g, vec!["http://127.0.0.1:9".into()], "app"), &g.creds).unwrap_err();
    assert_eq!(e.code(), "remote_unreachable", "{e}");
    link::test_connection(&request(&g, g.endpoints.clone(), "app"), &g.creds).unwrap();
    assert!(!bpv_sync::sync::is_linked(lib.area()).unwrap(), "a test links nothing");

    // A link with wrong keys is not kept, and leaves no credential behind.
    let e = link::link_library(&lib, &request(&g, g.endpoints.clone(), "app"), LinkKeys::Keychain(wrong)).unwrap_err();
    assert_eq!(e.code(), "remote_denied");
    assert!(!bpv_sync::sync::is_linked(lib.area()).unwrap());
    let secrets = Secrets::open(&lib, &SecretsOptions::default()).unwrap();
    assert!(secrets.list_credentials(&lib).unwrap().credentials.is_empty(), "failed link left a credential");

    // A good link: keys in the credential store, not in a file.
    let linked =
        link::link_library(&lib, &request(&g, g.endpoints.clone(), "app"), LinkKeys::Keychain(g.creds.clone()))
            .unwrap();
    let name = link::own_credential_name(&linked.device_id);
    assert_eq!(linked.credential.as_deref(), Some(name.as_str()));
    assert!(!lib.area().join("sync/credentials.json").exists(), "keys written to a plain file");
    let value = secrets.credential_value(&name, false).unwrap();
    assert_eq!(&value[..], format!("{}:{}", g.creds.access_key_id, g.creds.secret_access_key).as_bytes());

    // A change is pending until a sync sends it.
    let path = "Blueprints/a.blueprint.yaml";
    lib.save_blueprint(path, &yaml("a", "A", "one"), &BlueprintSave::default()).unwrap();
    let status = link::status_of(&lib).unwrap();
    assert_eq!(status.state, "pending");
    assert_eq!(status.items.len(), 1);
    assert_eq!(status.items[0].path, path);

    // Cancelled before it starts sending: fails `cancelled`, the change stays queued.
    let mut syncer = Syncer::open(&lib).unwrap();
    syncer.set_cancel(Arc::new(AtomicBool::new(true)));
    let e = syncer.sync(&lib).unwrap_err();
    assert_eq!(e.code(), "cancelled");
    assert!(link::status_of(&lib).unwrap().pending_changes > 0);

    // Synced for real (keys read back from the store).
    let report = Syncer::open(&lib).unwrap().sync(&lib).unwrap();
    assert_eq!(report.sent, 1);
    let status = link::status_of(&lib).unwrap();
    assert_eq!(status.state, "synced", "{status:?}");
    assert_eq!(status.synced, 1);

    // Linking elsewhere while linked is refused; re-linking the same place keeps the device.
    let e = link::link_library(&lib, &request(&g, g.endpoints.clone(), "other"), LinkKeys::Environment).unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    let again = link::link_library(&lib, &request(&g, g.endpoints.clone(), "app"), LinkKeys::Keychain(g.creds.clone()))
        .unwrap();
    assert_eq!(again.device_id, linked.device_id);

    // Unlink: the link, its state and its own credential go; the files stay.
    link::unlink_library(&lib).unwrap();
    assert!(!link::status_of(&lib).unwrap().linked);
    assert!(secrets.credential_value(&name, false).is_err(), "unlink kept the link's credential");
    assert!(lib.root().join(path).exists());
}
