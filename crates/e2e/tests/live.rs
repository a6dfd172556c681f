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

const SECRET_VALUE: &str = "sk-e2e-4f9c2a7b1d8e6f30";
const USES_SECRETS: &str = "Blueprints/shared/ai summary.blueprint.yaml";
const USES_SECRETS_YAML: &str = "name: AI summary zephyrine\nnodes:\n  - id: ask\n    type: openai\n    params:\n      api_key: ${secret:openai}\n  - id: post\n    type: slack\n    params:\n      token: ${secret:slack_token}\n      channel: '#zorvex-alerts'\nedges:\n  - from: ask\n    to: post\n";

/// Credentials in the real keychain (gnome-keyring's Secret Service in the test's D-Bus
/// session, as on a desktop), seen from a blueprint that uses them; then the blueprint
/// encrypted at rest and still readable in the app.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built app, tauri-driver, WebKitWebDriver and a display: run scripts/e2e.sh"]
async fn credentials_and_encryption() -> Res<()> {
    let world = World::new()?;
    let file = world.library().join(USES_SECRETS);
    std::fs::create_dir_all(file.parent().ok_or("no parent")?)?;
    std::fs::write(&file, USES_SECRETS_YAML)?;
    std::fs::write(companion_of(&file), USES_SECRETS_COMPANION)?;
    let app = App::launch(&world).await?;
    let result = run_credentials(&app, &world, &file).await;
    if result.is_err() {
        let _ = app.screenshot("creds-failure").await;
    }
    app.close().await?;
    result
}

async fn run_credentials(app: &App, world: &World, file: &Path) -> Res<()> {
    let row = format!("[data-testid=blueprint-row][data-path={}]", serde_json::to_string(USES_SECRETS)?);
    app.until("the row", T, &format!("return !!document.querySelector('{row}')")).await?;
    app.click(&row).await?;
    // 1. The blueprint shows the credentials it references, both missing.
    let missing = app
        .until(
            "the blueprint's credentials",
            T,
            "const c = [...document.querySelectorAll('[data-testid=detail-credential]')]; return c.length === 2 && c.every(e => e.dataset.present === 'false') && c.map(e => e.dataset.name).join(',')",
        )
        .await?;
    assert_eq!(missing.as_str(), Some("openai,slack_token"));

    // 2. Store one in the Credentials view: it goes to the keychain, not to a file.
    app.click("[data-testid=nav-credentials]").await?;
    app.until("the missing list", T, "return !!document.querySelector('[data-testid=missing-credentials]')").await?;
    app.type_into("[data-testid=credential-name]", "openai").await?;
    app.type_into("[data-testid=credential-value]", SECRET_VALUE).await?;
    app.click("[data-testid=credential-save]").await?;
    app.until(
        "the stored credential",
        T,
        "return !!document.querySelector('[data-testid=credential][data-name=openai]')",
    )
    .await?;
    let store = app.js("return document.querySelector('[data-testid=credential-store]').textContent").await?;
    app.click("[data-testid=credential][data-name=openai] [data-testid=reveal]").await?;
    let shown = app
        .until(
            "the revealed value",
            T,
            "const v = document.querySelector('[data-testid=revealed-value]'); return v && v.textContent",
        )
        .await?;
    assert_eq!(shown.as_str(), Some(SECRET_VALUE), "reveal shows the stored value");
    app.screenshot("creds-01-view").await?;
    let engine_side = Library::open(OpenOptions {
        root: world.library(),
        data_dir: Some(world.data_dir()),
        create: false,
        reconcile: false,
    })?;
    let secrets = bpv_engine::secrets::Secrets::open(&engine_side, &Default::default())?;
    assert_eq!(&secrets.credential_value("openai", false)?[..], SECRET_VALUE.as_bytes(), "the keychain holds it");
    // The test's session has gnome-keyring unlocked: the value must be in its Secret Service,
    // not in a fallback (keyutils forgets at reboot; the file store is not the keychain).
    assert_eq!(
        secrets.choice().store,
        bpv_engine::secrets::StoreKind::SecretService,
        "the library's credentials went to {:?} ({}), not gnome-keyring's Secret Service",
        secrets.choice().store,
        secrets.choice().reason
    );
    assert!(store.as_str().is_some_and(|s| s.contains("Secret Service")), "the app names the store it uses: {store}");
    assert_no_plain_text(world.dir.path(), SECRET_VALUE.as_bytes())?;

    // 3. Back in the blueprint: openai is there now, slack_token still missing.
    app.js("[...document.querySelectorAll('button')].find(b => b.textContent.includes('Back to blueprints')).click()")
        .await?;
    app.until(
        "openai present",
        T,
        "const e = document.querySelector('[data-testid=detail-credential][data-name=openai]'); return e && e.dataset.present === 'true'",
    )
    .await?;

    // 4. Encrypt it: the file on disk is sealed, the app still shows the workflow.
    app.click("[data-testid=encrypt]").await?;
    let deadline = std::time::Instant::now() + T;
    while !std::fs::read(file).is_ok_and(|b| bpv_engine::secrets::crypto::is_sealed(&b)) {
        assert!(std::time::Instant::now() < deadline, "the file was not sealed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.until(
        "the encrypted badge",
        T,
        "return [...document.querySelectorAll('.badge')].some(b => b.textContent.includes('Encrypted'))",
    )
    .await?;
    let nodes = app
        .until("the decrypted picture", T, "return document.querySelectorAll('[data-testid=graph] g.node').length")
        .await?;
    assert_eq!(nodes.as_u64(), Some(2), "the workflow is still drawn from the decrypted YAML");
    app.screenshot("creds-02-encrypted").await?;
    // Its name stays visible (listed and findable); its content is sealed everywhere.
    assert_no_plain_text(world.dir.path(), b"zorvex-alerts")?;

    // 5. A recovery kit, and recovery from it: a wrong passphrase is refused, the right one
    //    brings the key back; both are in the audit log.
    app.click("[data-testid=nav-credentials]").await?;
    app.until(
        "the key card",
        T,
        "const k = document.querySelector('[data-testid=key-status]'); return k && k.dataset.state === 'ok'",
    )
    .await?;
    app.click("[data-testid=make-kit]").await?;
    app.type_into("[data-testid=kit-passphrase]", KIT_PASSPHRASE).await?;
    app.type_into("[data-testid=kit-passphrase-again]", KIT_PASSPHRASE).await?;
    app.click("[data-testid=kit-create]").await?;
    let page = app
        .until(
            "the kit page",
            T,
            "const p = document.querySelector('[data-testid=kit-page]'); return p && p.textContent",
        )
        .await?;
    let page = page.as_str().ok_or("no kit page")?.to_owned();
    assert!(page.contains("RECOVERY KIT"), "a printable page: {page}");
    app.screenshot("creds-03-kit").await?;
    app.click("[data-testid=recover-kit]").await?;
    app.js(&format!(
        "const t = document.querySelector('[data-testid=kit-text]'); t.value = {}; t.dispatchEvent(new Event('input'));",
        serde_json::to_string(&page)?
    ))
    .await?;
    app.type_into("[data-testid=recover-passphrase]", "not the passphrase").await?;
    app.click("[data-testid=recover-submit]").await?;
    let refused = app
        .until(
            "the refusal",
            T,
            "const b = document.querySelector('[data-testid=key-status] [role=alert]'); return b && b.textContent",
        )
        .await?;
    assert!(refused.as_str().unwrap_or("").contains("passphrase"), "says the passphrase is wrong: {refused}");
    app.js("const p = document.querySelector('[data-testid=recover-passphrase]'); p.value = ''; p.dispatchEvent(new Event('input'));")
        .await?;
    app.type_into("[data-testid=recover-passphrase]", KIT_PASSPHRASE).await?;
    app.click("[data-testid=recover-submit]").await?;
    app.until("the recovery form to close", T, "return !document.querySelector('[data-testid=recover-submit]')")
        .await?;
    let log = secrets.audit_log()?;
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"recovery-kit-exported") && actions.contains(&"key-recovered"), "{actions:?}");

    // 6. Decrypt it again from the detail pane (after a confirmation): the file is the
    //    plain YAML it was before encryption, byte for byte; the companion keeps its tags
    //    and description; the audit log records it.
    app.js("[...document.querySelectorAll('button')].find(b => b.textContent.includes('Back to blueprints')).click()")
        .await?;
    app.click("[data-testid=decrypt]").await?;
    app.click("[data-testid=decrypt-confirm-button]").await?;
    let deadline = std::time::Instant::now() + T;
    while std::fs::read(file).is_ok_and(|b| bpv_engine::secrets::crypto::is_sealed(&b)) {
        assert!(std::time::Instant::now() < deadline, "the file was not decrypted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(std::fs::read(file)?, USES_SECRETS_YAML.as_bytes(), "plain YAML, byte-identical to before");
    let companion: serde_json::Value = serde_json::from_slice(&std::fs::read(companion_of(file))?)?;
    assert_eq!(companion["tags"], serde_json::json!(["ai", "alerts"]), "{companion}");
    assert_eq!(companion["description"], "Summarises and posts", "{companion}");
    assert!(companion.get("encrypted").is_none(), "no longer marked encrypted: {companion}");
    app.until("the Encrypt button back", T, "return !!document.querySelector('[data-testid=encrypt]')").await?;
    app.screenshot("creds-04-decrypted").await?;
    let log = secrets.audit_log()?;
    assert_eq!(log.last().map(|e| e.action.as_str()), Some("blueprint-decrypted"), "{log:?}");
    Ok(())
}

const KIT_PASSPHRASE: &str = "correct horse battery staple";
const USES_SECRETS_COMPANION: &str =
    "{\n  \"tags\": [\"ai\", \"alerts\"],\n  \"description\": \"Summarises and posts\"\n}\n";

/// `NAME.blueprint.yaml` → `NAME.blueprint.meta.json`.
fn companion_of(file: &Path) -> std::path::PathBuf {
    let name = file.file_name().map(|n| n.to_string_lossy().replace(".blueprint.yaml", ".blueprint.meta.json"));
    file.with_file_name(name.unwrap_or_default())
}

/// No file under `dir` (library, data dir, HOME with the keyring) holds `needle` in the clear.
fn assert_no_plain_text(dir: &Path, needle: &[u8]) -> Res<()> {
    for entry in walk(dir) {
        let Ok(bytes) = std::fs::read(&entry) else { continue };
        if bytes.windows(needle.len()).any(|w| w == needle) {
            return Err(format!("{} holds {:?} in plain text", entry.display(), String::from_utf8_lossy(needle)).into());
        }
    }
    Ok(())
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(walk(&p)),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
    out
}

/// "Restore over this library": after outside edits and a delete, the whole library comes
/// back byte for byte, the app keeps working on it (reopened, watched again), and the state
/// just before the restore is itself a snapshot.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built app, tauri-driver, WebKitWebDriver and a display: run scripts/e2e.sh"]
async fn restore_over_the_library() -> Res<()> {
    let world = World::new()?;
    let keep = world.library().join(REL);
    let gone = world.library().join("Blueprints/personal/other.blueprint.yaml");
    std::fs::create_dir_all(keep.parent().ok_or("no parent")?)?;
    std::fs::write(&keep, FIRST)?;
    std::fs::write(&gone, "name: Other\nnodes: []\n")?;
    let app = App::launch(&world).await?;
    let result = run_restore(&app, &world, &keep, &gone).await;
    if result.is_err() {
        let _ = app.screenshot("restore-here-failure").await;
    }
    app.close().await?;
    result
}

async fn run_restore(app: &App, world: &World, keep: &Path, gone: &Path) -> Res<()> {
    app.until("the rows", T, "return document.querySelectorAll('[data-testid=blueprint-row]').length === 2").await?;
    app.click("[data-testid=backups-button]").await?;
    app.click("[data-testid=backup-now]").await?;
    let id = app
        .until(
            "the backup",
            T,
            "const r = document.querySelector('[data-testid=backup-result]'); return r && r.dataset.id",
        )
        .await?;
    let id = id.as_str().ok_or("no snapshot id")?.to_owned();

    // Changes after the backup: one blueprint edited, the other deleted.
    std::fs::write(keep, OUTSIDE)?;
    std::fs::remove_file(gone)?;

    let snapshot_row = format!("[data-testid=snapshot][data-id={}]", serde_json::to_string(&id)?);
    app.until("the snapshot row", T, &format!("return !!document.querySelector('{snapshot_row}')")).await?;
    app.js(&format!("document.querySelector('{snapshot_row}').click()")).await?;
    app.until("the restore button", T, "return !!document.querySelector('[data-testid=restore-here]')").await?;
    // The confirmation is a native dialog: accept it from the page.
    app.js("window.confirm = () => true; document.querySelector('[data-testid=restore-here]').click()").await?;
    let result = app
        .until(
            "the restore result",
            Duration::from_secs(60),
            "const r = document.querySelector('[data-testid=restore-result]'); return r && r.textContent",
        )
        .await?;
    assert!(result.as_str().unwrap_or("").contains("before is snapshot"), "names the undo snapshot: {result}");
    app.screenshot("restore-here-01-done").await?;
    assert_eq!(std::fs::read_to_string(keep)?, FIRST, "the edited blueprint is back as it was");
    assert_eq!(std::fs::read_to_string(gone)?, "name: Other\nnodes: []\n", "the deleted one is back");

    // The app works on the restored library: listed, and watched again.
    app.click("button.back").await?;
    app.until("both rows", T, "return document.querySelectorAll('[data-testid=blueprint-row]').length === 2").await?;
    std::fs::write(
        world.library().join("Blueprints/personal/after.blueprint.yaml"),
        "name: After restore\nnodes: []\n",
    )?;
    app.until(
        "a file written after the restore",
        T,
        "return [...document.querySelectorAll('[data-testid=blueprint-row]')].some(r => r.dataset.path === 'Blueprints/personal/after.blueprint.yaml')",
    )
    .await?;
    Ok(())
}

/// Changes made while the app was closed are in the list after the next start: the app
/// shows the index's first page at once and its watcher's first rescan catches up.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built app, tauri-driver, WebKitWebDriver and a display: run scripts/e2e.sh"]
async fn changes_made_while_closed_show_after_the_next_start() -> Res<()> {
    let world = World::new()?;
    let dir = world.library().join("Blueprints/personal");
    std::fs::create_dir_all(&dir)?;
    for name in ["keep", "edit", "gone"] {
        std::fs::write(dir.join(format!("{name}.blueprint.yaml")), format!("name: {name} flow\nnodes: []\n"))?;
    }
    let app = App::launch(&world).await?;
    app.until("the three rows", T, "return document.querySelectorAll('[data-testid=blueprint-row]').length === 3")
        .await?;
    app.close().await?;

    // While the app is closed: an edit, a delete and a new blueprint in a new folder.
    std::fs::write(dir.join("edit.blueprint.yaml"), "name: edit flow\ndescription: zebracorn handover\nnodes: []\n")?;
    std::fs::remove_file(dir.join("gone.blueprint.yaml"))?;
    std::fs::create_dir_all(dir.join("new folder"))?;
    std::fs::write(dir.join("new folder/added.blueprint.yaml"), "name: added flow\nnodes: []\n")?;

    let app = App::launch(&world).await?;
    let result = async {
        let rows = "return [...document.querySelectorAll('[data-testid=blueprint-row]')].map(r => r.dataset.path).sort().join(',')";
        let want = "Blueprints/personal/edit.blueprint.yaml,Blueprints/personal/keep.blueprint.yaml,Blueprints/personal/new folder/added.blueprint.yaml";
        app.until("the rows as on disk", T, &format!("const r = (() => {{ {rows} }})(); return r === '{want}' && r"))
            .await?;
        app.type_into("input[type=search]", "zebracorn").await?;
        app.until(
            "the edited text to be found",
            T,
            "const r = [...document.querySelectorAll('[data-testid=blueprint-row]')]; return r.length === 1 && r[0].dataset.path === 'Blueprints/personal/edit.blueprint.yaml'",
        )
        .await?;
        app.screenshot("live-05-changed-while-closed").await?;
        Res::Ok(())
    }
    .await;
    if result.is_err() {
        let _ = app.screenshot("live-closed-failure").await;
    }
    app.close().await?;
    result
}
