//! Team library sync end to end: the real app and a real 3-node Garage cluster on loopback
//! (scripts/garage-cluster.sh). The app's library is linked in the Team view (keys into
//! the test session's keychain); a second library, synced with the `bpv` CLI, pushes a
//! blueprint that appears in the app after Sync now; a tag edited in the app reaches the
//! other library (the save-triggered sync); both sides editing one blueprint shows the
//! conflict in the app (Team view, status bar, the copy's badge).
//! Ignored by a plain `cargo test`; scripts/e2e.sh runs it under Xvfb.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bpv_e2e::{App, Res, World};

const T: Duration = Duration::from_secs(40);
const SHARED: &str = "Blueprints/shared/onboarding.blueprint.yaml";
const SHARED_YAML: &str = "id: onboarding-flow\nname: Onboarding\nnodes:\n  - id: welcome\n    type: email\n";
const SHARED_EDITED: &str = "id: onboarding-flow\nname: Onboarding\nnodes:\n  - id: welcome\n    type: email\n  - id: call\n    type: calendar\n";
const LOCAL: &str = "Blueprints/personal/mine.blueprint.yaml";

// The Garage cluster of bpv-sync's tests, shared by path rather than copied.
#[allow(dead_code)]
#[path = "../../sync/tests/common/garage.rs"]
mod garage;
use garage::Garage;

/// The other member's library, driven with the `bpv` CLI built beside the app.
struct Other {
    dir: tempfile::TempDir,
}

impl Other {
    fn lib(&self) -> PathBuf {
        self.dir.path().join("lib")
    }

    fn bpv(&self, args: &[&str], stdin: &str) -> Res<String> {
        let bin = bpv_e2e::app_binary().parent().ok_or("no target dir")?.join("bpv");
        let mut child = Command::new(&bin)
            .arg("--library")
            .arg(self.lib())
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .env("BPV_CREDENTIAL_STORE", "file")
            .env("BPV_CREDENTIALS_PASSPHRASE", "the other member's passphrase")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {} ({e}): cargo build -p bpv", bin.display()))?;
        child.stdin.take().ok_or("stdin")?.write_all(stdin.as_bytes())?;
        let out: Output = child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!("bpv {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn write(&self, rel: &str, text: &str) -> Res<()> {
        let file = self.lib().join(rel);
        std::fs::create_dir_all(file.parent().ok_or("no parent")?)?;
        std::fs::write(file, text)?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built app and bpv, garage, tauri-driver, WebKitWebDriver and a display: run scripts/e2e.sh"]
async fn team_library_sync_in_the_app() -> Res<()> {
    let cluster = Garage::start();
    let world = World::new()?;
    let mine = world.library().join(LOCAL);
    std::fs::create_dir_all(mine.parent().ok_or("no parent")?)?;
    std::fs::write(&mine, "name: Mine\nnodes:\n  - id: a\n    type: http\n")?;
    let other = Other { dir: tempfile::tempdir()? };
    let app = App::launch(&world).await?;
    let result = run(&app, &world, &cluster, &other).await;
    if result.is_err() {
        let _ = app.screenshot("team-failure").await;
    }
    app.close().await?;
    result
}

fn js_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

async fn run(app: &App, world: &World, cluster: &Garage, other: &Other) -> Res<()> {
    let endpoints = cluster.endpoints.clone();
    let key_id = cluster.creds.access_key_id.clone();
    let secret = cluster.creds.secret_access_key.clone();
    let bucket = cluster.bucket.clone();

    // 1. Link the app's library in the Team view: wrong keys are refused first.
    app.until("the sidebar", T, "return !!document.querySelector('[data-testid=nav-team]')").await?;
    app.click("[data-testid=nav-team]").await?;
    app.until("the link form", T, "return !!document.querySelector('[data-testid=team-link-form]')").await?;
    // Comma separated (WebDriver drops typed line breaks; the form takes both).
    app.type_into("[data-testid=team-endpoints]", &endpoints.join(", ")).await?;
    app.type_into("[data-testid=team-bucket]", &bucket).await?;
    app.type_into("[data-testid=team-prefix]", "design").await?;
    app.type_into("[data-testid=team-region]", "garage").await?;
    app.type_into("[data-testid=team-device]", "desk").await?;
    app.type_into("[data-testid=team-key-id]", &key_id).await?;
    app.type_into("[data-testid=team-secret]", "not-the-secret").await?;
    app.click("[data-testid=team-test]").await?;
    let code = app
        .until(
            "the refusal",
            T,
            "const e = document.querySelector('[data-testid=team-link-error]'); return e && e.dataset.code",
        )
        .await?;
    assert_eq!(code.as_str(), Some("remote_denied"), "wrong keys are reported as refused");
    app.screenshot("team-01-wrong-keys").await?;
    app.js("const s = document.querySelector('[data-testid=team-secret]'); s.value = ''; s.dispatchEvent(new Event('input'))")
        .await?;
    app.type_into("[data-testid=team-secret]", &secret).await?;
    app.click("[data-testid=team-link]").await?;
    app.until("the linked state", T, "return !!document.querySelector('[data-testid=team-summary]')").await?;
    let keys = app.js("return document.querySelector('[data-testid=team-summary]').textContent").await?;
    assert!(keys.as_str().unwrap_or("").contains("in the OS keychain"), "keys kept in the keychain: {keys}");
    // No file of the app's data (the library's private area included) holds the secret.
    let leaked: Vec<String> = walk(&world.data_dir())
        .into_iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.windows(secret.len()).any(|w| w == secret.as_bytes())))
        .collect();
    assert!(leaked.is_empty(), "the secret key is in a plain file: {leaked:?}");
    // The app's own blueprint goes out with the first sync (the timer's or the button's).
    app.click("[data-testid=team-sync-now]").await?;
    app.until(
        "the first sync",
        T,
        "const s = document.querySelector('[data-testid=team-summary]'); return s && s.dataset.state === 'synced'",
    )
    .await?;
    app.click("[data-testid=team-verify]").await?;
    let verified = app
        .until(
            "Verify's result",
            T,
            "const r = document.querySelector('[data-testid=team-result]'); return r && r.textContent.startsWith('Verified') && r.textContent",
        )
        .await?;
    assert!(verified.as_str().unwrap_or("").contains("1 blueprint"), "{verified}");
    app.screenshot("team-02-linked").await?;

    // 1b. The wizard copies the library to another prefix of the bucket (a new team library);
    // its keys are used for that call only.
    app.click("[data-testid=migrate-open]").await?;
    app.click("[data-testid=migrate-kind-bucket]").await?;
    app.type_into("[data-testid=migrate-endpoints]", &endpoints.join(", ")).await?;
    app.type_into("[data-testid=migrate-bucket]", &bucket).await?;
    app.type_into("[data-testid=migrate-prefix]", "archive").await?;
    app.type_into("[data-testid=migrate-region]", "garage").await?;
    app.type_into("[data-testid=migrate-key-id]", &key_id).await?;
    app.type_into("[data-testid=migrate-secret]", &secret).await?;
    app.click("[data-testid=migrate-backup]").await?;
    app.click("[data-testid=migrate-check]").await?;
    let checked = app
        .until(
            "the bucket Check",
            T,
            "const c = document.querySelector('[data-testid=migrate-checked]'); return c && c.textContent",
        )
        .await?;
    assert!(
        checked.as_str().unwrap_or("").contains(&format!("1 blueprint would be copied to s3://{bucket}/archive")),
        "{checked}"
    );
    // (By script: the "Linked" toast may cover the button.)
    app.js("document.querySelector('[data-testid=migrate-copy]').click()").await?;
    let done = app
        .until(
            "the bucket copy",
            T,
            "const d = document.querySelector('[data-testid=migrate-done]'); return d && d.textContent",
        )
        .await?;
    let done = done.as_str().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(done.contains("Verified 1 of 1 blueprint, byte for byte"), "{done}");
    app.js("document.querySelector('[data-testid=migrate-done]').scrollIntoView({ block: 'center' })").await?;
    app.screenshot("team-02b-copied-to-bucket").await?;
    let leaked: Vec<String> = walk(&world.data_dir())
        .into_iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.windows(secret.len()).any(|w| w == secret.as_bytes())))
        .collect();
    assert!(leaked.is_empty(), "the migration kept the secret key in a plain file: {leaked:?}");

    // 2. The other member links with the CLI, receives the app's blueprint, pushes one.
    let mut link = vec!["sync", "link", "--bucket", &bucket, "--prefix", "design", "--region", "garage"];
    for e in &endpoints {
        link.extend(["--endpoint", e.as_str()]);
    }
    link.extend(["--device-name", "laptop", "--access-key-id", &key_id]);
    other.bpv(&["init"], "")?;
    other.bpv(&link, &secret)?;
    other.write(SHARED, SHARED_YAML)?;
    other.bpv(&["sync"], "")?;
    assert!(other.lib().join(LOCAL).exists(), "the app's blueprint reached the other library");
    app.click("[data-testid=team-sync-now]").await?;
    app.until(
        "Sync now's result",
        T,
        "const r = document.querySelector('[data-testid=team-result]'); return r && r.textContent.includes('received')",
    )
    .await?;
    app.click(".back").await?;
    let row = format!("[data-testid=blueprint-row][data-path={}]", js_str(SHARED));
    app.until("the pushed blueprint in the list", T, &format!("return !!document.querySelector('{row}')")).await?;
    assert_eq!(std::fs::read_to_string(world.library().join(SHARED))?, SHARED_YAML, "byte for byte");
    app.click(&row).await?;
    app.until(
        "its synced badge",
        T,
        "const b = document.querySelector('[data-testid=sync-badge]'); return b && b.dataset.state === 'synced'",
    )
    .await?;
    app.screenshot("team-03-received").await?;

    // 3. A tag added in the app reaches the other library (the sync a save triggers).
    app.type_into("[data-testid=tag-editor] input", "team-reviewed\u{E007}").await?;
    let companion = other.lib().join(SHARED.replace(".blueprint.yaml", ".blueprint.meta.json"));
    let deadline = Instant::now() + T;
    loop {
        other.bpv(&["sync"], "")?;
        if std::fs::read_to_string(&companion).is_ok_and(|t| t.contains("team-reviewed")) {
            break;
        }
        if Instant::now() > deadline {
            return Err("the tag edited in the app did not reach the other library".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 4. Both sides edit the blueprint without seeing each other's edit: a conflict.
    app.until(
        "the app to be synced",
        T,
        "const s = document.querySelector('[data-testid=status-sync]'); return s && s.textContent === 'synced'",
    )
    .await?;
    other.write(SHARED, SHARED_EDITED)?;
    other.bpv(&["sync"], "")?;
    app.type_into("[data-testid=tag-editor] input", "desk-edit\u{E007}").await?;
    app.until(
        "the conflict in the status bar",
        T,
        "const s = document.querySelector('[data-testid=status-sync]'); return s && s.textContent.includes('conflict')",
    )
    .await?;
    app.click("[data-testid=status-sync]").await?;
    let copy = app
        .until(
            "the conflict in the Team view",
            T,
            "const c = document.querySelector('[data-testid=team-conflict]'); return c && c.dataset.path",
        )
        .await?;
    let copy = copy.as_str().unwrap_or_default().to_owned();
    assert!(copy.contains("(conflict "), "a conflict copy beside the blueprint: {copy}");
    assert!(world.library().join(&copy).exists(), "the copy is a file in the library");
    assert!(world.library().join(SHARED).exists());
    app.screenshot("team-04-conflict").await?;
    // Both versions are kept: one at the path, the other in the copy.
    let kept =
        [std::fs::read_to_string(world.library().join(SHARED))?, std::fs::read_to_string(world.library().join(&copy))?];
    assert!(kept.iter().any(|t| t == SHARED_EDITED), "the other member's edit is kept");
    app.click("[data-testid=open-conflict-copy]").await?;
    app.until(
        "the copy's conflict badge",
        T,
        "const b = document.querySelector('[data-testid=sync-badge]'); return b && b.dataset.state === 'conflict'",
    )
    .await?;
    app.screenshot("team-05-conflict-copy").await?;

    // 5. Unlink: the link goes (after a confirmation), the files stay.
    app.click("[data-testid=nav-team]").await?;
    app.until("the Team view", T, "return !!document.querySelector('[data-testid=team-summary]')").await?;
    app.js("[...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Unlink…').click()").await?;
    app.click("[data-testid=team-unlink]").await?;
    app.until("the link form again", T, "return !!document.querySelector('[data-testid=team-link-form]')").await?;
    // (Step 1b's migration keeps its own device's state under `migrations/`, to resume.)
    let links: Vec<String> = walk(&world.data_dir())
        .into_iter()
        .filter(|p| p.ends_with("sync/link.json") && !p.contains("/migrations/"))
        .collect();
    assert!(links.is_empty(), "the link is gone: {links:?}");
    assert!(world.library().join(SHARED).exists() && world.library().join(&copy).exists(), "the files stay");
    app.until("no sync word in the status bar", T, "return !document.querySelector('[data-testid=status-sync]')")
        .await?;
    Ok(())
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// Issue 9's wizard: "Copy this library to another backend…" to a folder through the UI.
/// A folder that is not empty is refused with a message; an empty one is checked (what
/// would be copied), then copied after a backup, and every file there is byte-identical.
/// No Garage needed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built app, tauri-driver, WebKitWebDriver and a display: run scripts/e2e.sh"]
async fn migrate_library_to_a_folder_in_the_app() -> Res<()> {
    let world = World::new()?;
    let files = [
        (LOCAL, "name: Mine\nnodes:\n  - id: a\n    type: http\n"),
        (SHARED, SHARED_YAML),
        ("Blueprints/deep/er/broken.blueprint.yaml", "name: [unclosed\n"),
    ];
    for (rel, text) in files {
        let file = world.library().join(rel);
        std::fs::create_dir_all(file.parent().ok_or("no parent")?)?;
        std::fs::write(file, text)?;
    }
    let busy = world.dir.path().join("busy-folder");
    std::fs::create_dir_all(&busy)?;
    std::fs::write(busy.join("notes.txt"), "someone's files")?;
    let target = world.dir.path().join("copy");
    let app = App::launch(&world).await?;
    let result = migrate_run(&app, &world, &busy, &target).await;
    if result.is_err() {
        let _ = app.screenshot("migrate-failure").await;
    }
    app.close().await?;
    result?;
    // Byte for byte, and nothing but the library's files (the in-progress marker is gone).
    let source: Vec<String> = blueprint_files(&world.library());
    let copied: Vec<String> = blueprint_files(&target);
    assert_eq!(source.len(), 3, "{source:?}");
    assert_eq!(copied, source, "the same blueprint files in the copy");
    for rel in &source {
        assert_eq!(std::fs::read(target.join(rel))?, std::fs::read(world.library().join(rel))?, "{rel} differs");
    }
    assert!(!target.join(".bpv-migration.json").exists(), "the marker is removed once verified");
    assert_eq!(std::fs::read_to_string(busy.join("notes.txt"))?, "someone's files", "the refused folder is untouched");
    Ok(())
}

async fn migrate_run(app: &App, world: &World, busy: &Path, target: &Path) -> Res<()> {
    let wizard = "[data-testid=migrate-wizard]";
    app.until("the sidebar", T, "return !!document.querySelector('[data-testid=nav-team]')").await?;
    app.click("[data-testid=nav-team]").await?;
    app.until("the wizard", T, &format!("return !!document.querySelector('{wizard}')")).await?;
    app.click("[data-testid=migrate-open]").await?;
    // Copy is off until the target is checked.
    let copy_off = "return document.querySelector('[data-testid=migrate-copy]').disabled";
    assert_eq!(app.js(copy_off).await?.as_bool(), Some(true));

    // A folder that is not empty: refused, with what to do.
    app.type_into("[data-testid=migrate-folder]", &busy.to_string_lossy()).await?;
    app.click("[data-testid=migrate-check]").await?;
    let refusal = app
        .until(
            "the refusal",
            T,
            "const e = document.querySelector('[data-testid=migrate-error]'); return e && e.textContent",
        )
        .await?;
    let refusal = refusal.as_str().unwrap_or_default();
    assert!(refusal.contains("not empty") && refusal.contains("choose an empty folder"), "{refusal}");
    assert_eq!(app.js(copy_off).await?.as_bool(), Some(true), "a refused target cannot be copied to");
    app.js("document.querySelector('[data-testid=migrate-error]').scrollIntoView({ block: 'center' })").await?;
    app.screenshot("migrate-01-refused").await?;

    // An empty (new) folder: Check says what would be copied.
    app.js("const f = document.querySelector('[data-testid=migrate-folder]'); f.value = ''; f.dispatchEvent(new Event('input'))")
        .await?;
    app.type_into("[data-testid=migrate-folder]", &target.to_string_lossy()).await?;
    app.click("[data-testid=migrate-check]").await?;
    let checked = app
        .until(
            "Check's result",
            T,
            "const c = document.querySelector('[data-testid=migrate-checked]'); return c && c.textContent",
        )
        .await?;
    let checked = checked.as_str().unwrap_or_default();
    assert!(checked.contains("3 blueprints would be copied"), "{checked}");
    assert!(checked.contains("1 invalid"), "{checked}");
    assert!(!target.exists(), "Check writes nothing");
    app.js("document.querySelector('[data-testid=migrate-checked]').scrollIntoView({ block: 'center' })").await?;
    app.screenshot("migrate-02-checked").await?;

    // Copy (backup first, the default): verified N of N, byte for byte.
    app.click("[data-testid=migrate-copy]").await?;
    let done = app
        .until(
            "the copy's result",
            T,
            "const d = document.querySelector('[data-testid=migrate-done]'); return d && d.textContent",
        )
        .await?;
    let done = done.as_str().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(done.contains("Verified 3 of 3 blueprints, byte for byte"), "{done}");
    assert!(done.contains(&format!("file://{}", target.display())), "{done}");
    assert!(done.contains("backup"), "the backup was taken first: {done}");
    assert!(
        walk(&world.data_dir()).iter().any(|p| p.contains("snapshots")),
        "a snapshot in the backup folder: {:?}",
        walk(&world.data_dir())
    );
    app.js("document.querySelector('[data-testid=migrate-done]').scrollIntoView({ block: 'center' })").await?;
    app.screenshot("migrate-03-copied").await?;
    Ok(())
}

/// Library-relative blueprint and companion files under `root`, sorted.
fn blueprint_files(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = walk(root)
        .into_iter()
        .filter(|p| p.ends_with(".blueprint.yaml") || p.ends_with(".blueprint.meta.json"))
        .filter_map(|p| Path::new(&p).strip_prefix(root).ok().map(|r| r.to_string_lossy().into_owned()))
        .collect();
    out.sort();
    out
}
