//! The portal's in-browser verifier checks roles and scopes from a table generated from
//! the event catalogue, never from a second hand-written list: the committed
//! `portal/src/core/catalogue.json` must be what [`catalogue_json`] says.
//! `UPDATE_PORTAL_CATALOGUE=1 cargo test --workspace --test portal_catalogue` rewrites it.

use std::path::Path;

use fundtrail_domain::event::{catalogue_json, EventType, Role};

#[test]
fn the_portal_catalogue_is_the_event_catalogue() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../portal/src/core/catalogue.json");
    let fresh = serde_json::to_string_pretty(&catalogue_json()).unwrap() + "\n";
    if std::env::var_os("UPDATE_PORTAL_CATALOGUE").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: run UPDATE_PORTAL_CATALOGUE=1 cargo test --workspace --test portal_catalogue",
        path.display()
    );
    // It says everything the catalogue knows.
    let table = catalogue_json();
    assert_eq!(table["events"].as_object().unwrap().len(), EventType::ALL.len());
    assert_eq!(table["roles"].as_object().unwrap().len(), Role::ALL.len());
    assert_eq!(table["events"]["payout.made"]["roles"], serde_json::json!(["host_treasurer"]));
    assert_eq!(table["events"]["role.granted"]["scope"], "either");
}
