//! The open blueprint follows the disk, end to end in the real app: another program
//! saves it while the user has unsaved edits (the conflict is shown with its
//! differences; "keep mine" saves over it knowingly), deletes it while it is open (it
//! can be put back), and an earlier version is restored from the history list.
//! Ignored by a plain `cargo test`; scripts/e2e.sh runs it under Xvfb.

use std::path::Path;
use std::time::Duration;

use bpv_e2e::{App, Res, World};
use bpv_engine::library::{BlueprintSave, Library, OpenOptions};

const T: Duration = Duration::from_secs(30);
const REL: &str = "Blueprints/personal/weekly report.blueprint.yaml";
const FIRST: &str = "name: Weekly report\ndescription: Sends the numbers\nnodes:\n  - id: fetch\n    type: http\n  - id: mail\n    type: email\nedges:\n  - from: fetch\n    to: mail\n";
const OUTSIDE: &str = "name: Weekly report\ndescription: Sends the numbers\nnodes:\n  - id: fetch\n    type: http\n  - id: post\n    type: slack\nedges:\n  - from: fetch\n    to: post\n";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built app, tauri-driver, WebKitWebDriver and a display: run scripts/e2e.sh"]
async fn the_open_blueprint_follows_outside_changes() -> Res<()> {
    let world = World::new()?;
    let file = world.library().join(REL);
    std::fs::create_dir_all(file.parent().ok_or("no parent")?)?;
    std::fs::write(&file, FIRST)?;
    std::fs::write(world.library().join("Blueprints/personal/other.blueprint.yaml"), "name: Other\nnodes: []\n")?;
    let app = App::launch(&world).await?;
    let result = run(&app, &world, &file).await;
    if result.is_err() {
        let _ = app.screenshot("live-failure").await;
    }
    app.close().await?;
    result
}

async fn run(app: &App, world: &World, file: &Path) -> Res<()> {
    let row = format!("[data-testid=blueprint-row][data-path={}]", serde_json::to_string(REL)?);
    app.until("the row", T, &format!("return !!document.querySelector('{row}')")).await?;
    app.click(&row).await?;
    app.until("the detail pane", T, "return !!document.querySelector('[data-testid=detail]')").await?;

    // 1. Unsaved edit + an outside save: the conflict is shown, not silently dropped.
    app.type_into("textarea[aria-label=Description]", " every Monday").await?;
    std::fs::write(file, OUTSIDE)?;
    app.until("the conflict banner", T, "return !!document.querySelector('[data-testid=conflict-banner]')").await?;
    app.screenshot("live-01-conflict").await?;
    app.click("[data-testid=compare]").await?;
    let diff = app
        .until(
            "the differences",
            T,
            "const d = document.querySelector('[data-testid=diff]'); return d && d.textContent",
        )
        .await?;
    assert!(diff.as_str().unwrap_or("").contains("every Monday"), "the diff shows the user's edit: {diff}");
    app.screenshot("live-02-compare").await?;
    app.click("[data-testid=keep-mine]").await?;
    let companion = world.library().join(REL.replace(".blueprint.yaml", ".blueprint.meta.json"));
    wait_for(T, || std::fs::read_to_string(&companion).is_ok_and(|t| t.contains("every Monday")))
        .await
        .map_err(|_| "keep mine did not save the description")?;
    assert_eq!(std::fs::read_to_string(file)?, OUTSIDE, "keeping my description leaves their YAML as they wrote it");
    app.until("the banner to go", T, "return !document.querySelector('[data-testid=conflict-banner]')").await?;

    // 2. Deleted on disk while open: said so, and put back from the copy shown.
    std::fs::remove_file(file)?;
    app.until("the deleted banner", T, "return !!document.querySelector('[data-testid=deleted-banner]')").await?;
    app.screenshot("live-03-deleted").await?;
    app.click("[data-testid=put-back]").await?;
    wait_for(T, || std::fs::read_to_string(file).is_ok_and(|t| t == OUTSIDE))
        .await
        .map_err(|_| "put back did not recreate the file with its last content")?;
    app.until("the banner to go", T, "return !document.querySelector('[data-testid=deleted-banner]')").await?;

    // 3. History: a save elsewhere through the engine keeps the previous content as a
    //    version; restoring it in the app brings those bytes back.
    let other_process = Library::open(OpenOptions {
        root: world.library(),
        data_dir: Some(world.data_dir()),
        create: false,
        reconcile: true,
    })?;
    other_process.save_blueprint(REL, FIRST.as_bytes(), &BlueprintSave::default())?;
    drop(other_process);
    let versions = app
        .until("a version in the history", T, "return document.querySelectorAll('[data-testid=version]').length")
        .await?;
    assert!(versions.as_u64().unwrap_or(0) >= 1);
    app.screenshot("live-04-history").await?;
    app.js("document.querySelector('[data-testid=version] button:last-of-type').click()").await?;
    wait_for(T, || std::fs::read_to_string(file).is_ok_and(|t| t == OUTSIDE))
        .await
        .map_err(|_| "restoring the version did not bring its bytes back")?;
    Ok(())
}

async fn wait_for(timeout: Duration, ok: impl Fn() -> bool) -> Result<(), ()> {
    let deadline = std::time::Instant::now() + timeout;
    while !ok() {
        if std::time::Instant::now() > deadline {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
