//! End-to-end tests of the real app (ignored by a plain `cargo test`; scripts/e2e.sh
//! runs them under Xvfb with `--ignored`). Screenshots go to target/e2e-artifacts/.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use bpv_e2e::{App, Res, World, memory_kib};
use bpv_engine::index::SearchQuery;
use bpv_engine::library::{Library, OpenOptions};

const T: Duration = Duration::from_secs(30);

fn corpus(world: &World, count: usize) -> Res<bpv_bench::corpus::Manifest> {
    let lib = world.library();
    std::fs::remove_dir_all(&lib)?;
    let manifest = bpv_bench::corpus::generate(&bpv_bench::corpus::CorpusOptions {
        out: lib.clone(),
        count,
        seed: 7,
        broken_ratio: 0.01,
    })?;
    Ok(manifest)
}

/// The engine's own answer, from a separate data dir (its own index of the same files).
fn engine(world: &World) -> Res<Library> {
    Ok(Library::open(OpenOptions {
        root: world.library(),
        data_dir: Some(world.dir.path().join("engine-data")),
        create: false,
        reconcile: true,
    })?)
}

fn engine_search(lib: &Library, text: &str) -> Res<(usize, Vec<String>)> {
    let page = lib.search(&SearchQuery { text: text.into(), limit: 1000, ..Default::default() })?;
    Ok((page.total, page.hits.into_iter().map(|h| h.item.path).collect()))
}

async fn search_for(app: &App, text: &str) -> Res<()> {
    app.js("const s = document.querySelector('input[type=search]'); s.focus(); s.select();").await?;
    // Select-all + the new text replaces the query, one keystroke at a time.
    app.type_into("input[type=search]", &format!("\u{E009}a\u{E009}{text}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built app, tauri-driver, WebKitWebDriver and a display: run scripts/e2e.sh"]
async fn browse_search_edit_delete() -> Res<()> {
    let world = World::new()?;
    let manifest = corpus(&world, 300)?;
    let engine = engine(&world)?;
    let app = App::launch(&world).await?;
    let result = run_flow(&app, &world, &engine, &manifest).await;
    if result.is_err() {
        let _ = app.screenshot("failure").await;
    }
    app.close().await?;
    result
}

async fn run_flow(app: &App, world: &World, engine: &Library, manifest: &bpv_bench::corpus::Manifest) -> Res<()> {
    // 1. The first screen lists the library.
    app.until("the first rows", T, "return document.querySelectorAll('[data-testid=blueprint-row]').length").await?;
    let total = app.list_total().await?;
    assert_eq!(total, Some(manifest.count as u64), "the list shows every blueprint");
    let stats = engine.index().stats()?;
    assert_eq!(stats.items, manifest.count as u64);
    let first_rows = app.row_paths().await?;
    assert!(first_rows.len() >= 8, "a screenful of rows: {first_rows:?}");
    app.screenshot("01-main").await?;

    // 2. Typing in the search box narrows the list to exactly the engine's matches.
    let rare = manifest
        .rare_words
        .iter()
        .filter(|w| (2..=8).contains(&w.files))
        .min_by_key(|w| std::cmp::Reverse(w.files))
        .ok_or("the corpus has no rare word in 2..=8 files")?;
    let (n, expected) = engine_search(engine, &rare.word)?;
    assert_eq!(n, rare.files, "the engine finds the planted word");
    search_for(app, &rare.word).await?;
    app.until(
        "the rare-word results",
        T,
        &format!(
            "const e = document.querySelector('[data-testid=result-count]'); return e && e.textContent.includes('{}') && Number(e.dataset.total) === {n}",
            rare.word
        ),
    )
    .await?;
    app.until(
        "the rows to match",
        T,
        &format!("return document.querySelectorAll('[data-testid=blueprint-row]').length === {n}"),
    )
    .await?;
    let shown: BTreeSet<String> = app.row_paths().await?.into_iter().collect();
    let wanted: BTreeSet<String> = expected.iter().cloned().collect();
    assert_eq!(shown, wanted, "the list shows exactly the matching blueprints");
    let marks = app.js("return document.querySelectorAll('[data-testid=blueprint-row] mark').length").await?;
    assert!(marks.as_u64().unwrap_or(0) >= 1, "matches are highlighted");
    app.screenshot("02-search-rare").await?;

    // A common word: the same total as the engine, the same first rows in rank order.
    let common = &manifest
        .common_words
        .iter()
        .filter(|w| w.valid_files > 10)
        .min_by_key(|w| w.valid_files)
        .or(manifest.common_words.first())
        .ok_or("no common word")?
        .word;
    let (n, expected) = engine_search(engine, common)?;
    search_for(app, common).await?;
    app.until(
        "the common-word results",
        T,
        &format!("const e = document.querySelector('[data-testid=result-count]'); return e && e.textContent.includes('{common}') && Number(e.dataset.total) === {n}"),
    )
    .await?;
    let rows = app.row_paths().await?;
    assert!(!rows.is_empty());
    assert_eq!(rows[..], expected[..rows.len()], "rows in the engine's rank order");
    app.screenshot("03-search-common").await?;

    // 3. Opening one shows its metadata and its graph.
    let target = rows[0].clone();
    let item = engine.item(&target)?;
    let nodes = bpv_engine::blueprint::analyse(&engine.read(&target)?).nodes.len();
    app.click(&format!("[data-testid=blueprint-row][data-path=\"{}\"]", target.replace('"', "\\\""))).await?;
    app.until(
        "the detail pane",
        T,
        &format!(
            "const d = document.querySelector('[data-testid=detail]'); return d && d.dataset.path === {}",
            serde_json::to_string(&target)?
        ),
    )
    .await?;
    let name = app.js("return document.querySelector('[data-testid=detail-name]').textContent").await?;
    assert_eq!(name.as_str(), Some(item.name.as_str()));
    let meta = app.js("return document.querySelector('[data-testid=detail-meta]').textContent").await?;
    if let Some(author) = &item.author {
        assert!(meta.as_str().unwrap_or("").contains(author.as_str()), "metadata shows the author: {meta}");
    }
    if nodes > 0 {
        let drawn =
            app.until("the graph", T, "return document.querySelectorAll('[data-testid=graph] g.node').length").await?;
        assert_eq!(drawn.as_u64(), Some(nodes as u64), "one box per node");
    }
    app.screenshot("04-detail").await?;

    // 4. Editing its tags changes the companion file on disk.
    app.type_into("[data-testid=tag-editor] input", "e2e-checked\u{E007}").await?;
    let companion = world.library().join(target.replace(".blueprint.yaml", ".blueprint.meta.json"));
    wait_for_file(&companion, T, |text| text.contains("\"e2e-checked\"")).await?;
    app.until("the new tag chip", T, "return [...document.querySelectorAll('[data-testid=tag-editor] .chip')].some(c => c.textContent.includes('e2e-checked'))").await?;
    app.screenshot("05-tag-added").await?;

    // 5. Delete moves it to the Trash.
    app.click("[data-testid=delete]").await?;
    let file = world.library().join(&target);
    let deadline = std::time::Instant::now() + T;
    while file.exists() {
        assert!(std::time::Instant::now() < deadline, "{} still exists after delete", file.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!companion.exists(), "the companion went with it");
    // The app's own trash (in its data dir's area for this library).
    let app_side = Library::open(OpenOptions {
        root: world.library(),
        data_dir: Some(world.data_dir()),
        create: false,
        reconcile: false,
    })?;
    assert!(app_side.trash_list()?.iter().any(|e| e.path == target), "{target} is in the Trash");
    app.until(
        "the row to go",
        T,
        &format!(
            "return !document.querySelector('[data-testid=blueprint-row][data-path=' + JSON.stringify({}) + ']')",
            serde_json::to_string(&target)?
        ),
    )
    .await?;
    app.screenshot("06-deleted").await?;
    app.js("[...document.querySelectorAll('nav button')].find(b => b.textContent.includes('Trash')).click()").await?;
    app.until(
        "the trash entry",
        T,
        &format!(
            "return !!document.querySelector('[data-testid=trash-entry][data-path=' + JSON.stringify({}) + ']')",
            serde_json::to_string(&target)?
        ),
    )
    .await?;
    app.screenshot("07-trash").await?;

    // 6. A blueprint written by another program shows up without any action in the app.
    app.js("[...document.querySelectorAll('button')].find(b => b.textContent.includes('Back to blueprints')).click()")
        .await?;
    let outside = world.library().join("Blueprints/personal/outside-edit.blueprint.yaml");
    std::fs::write(&outside, "name: Written outside zorblaxquent\nnodes: []\n")?;
    search_for(app, "zorblaxquent").await?;
    app.until(
        "the outside edit",
        T,
        "return [...document.querySelectorAll('[data-testid=blueprint-row]')].some(r => r.dataset.path === 'Blueprints/personal/outside-edit.blueprint.yaml')",
    )
    .await?;
    Ok(())
}

async fn wait_for_file(path: &Path, timeout: Duration, ok: impl Fn(&str) -> bool) -> Res<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && ok(&text)
        {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("{} never got the expected content", path.display()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Figures for docs/BENCHMARKS.md: `BPV_E2E_BENCH_COUNTS=10000,100000 scripts/e2e.sh --bench`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run through scripts/e2e.sh --bench"]
async fn app_figures() -> Res<()> {
    let counts: Vec<usize> = std::env::var("BPV_E2E_BENCH_COUNTS")
        .unwrap_or_else(|_| "10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    for count in counts {
        let world = World::new()?;
        let manifest = corpus(&world, count)?;
        // First start (builds the index), then a warm start as people see it every day.
        for run in ["cold", "warm"] {
            let app = App::launch(&world).await?;
            app.until(
                "the first rows",
                Duration::from_secs(600),
                "return document.querySelectorAll('[data-testid=blueprint-row]').length",
            )
            .await?;
            let painted = app.started.elapsed().as_millis();
            let in_page = app
                .until("the first paint", T, "return window.__bpvTimings && window.__bpvTimings.firstListPainted")
                .await?;
            println!(
                "FIGURE count={count} run={run} start_to_first_list_ms={painted} session_ms={} page_first_list_ms={in_page}",
                app.session_millis
            );
            if run == "warm" {
                let words: Vec<String> = manifest
                    .common_words
                    .iter()
                    .take(3)
                    .map(|w| w.word.clone())
                    .chain(manifest.rare_words.iter().take(3).map(|w| w.word.clone()))
                    .collect();
                for w in &words {
                    search_for(&app, w).await?;
                    app.until(
                        "search results",
                        T,
                        &format!(
                            "return (window.__bpvTimings.searches || []).some(s => s.text === {})",
                            serde_json::to_string(w)?
                        ),
                    )
                    .await?;
                }
                let searches = app.js("return window.__bpvTimings.searches").await?;
                println!("FIGURE count={count} searches={searches}");
                search_for(&app, "").await?;
                tokio::time::sleep(Duration::from_secs(5)).await;
                let pids = app.app_pids();
                let (rss, pss) = memory_kib(&pids);
                println!("FIGURE count={count} idle_processes={} rss_kib={rss} pss_kib={pss}", pids.len());
                app.screenshot(&format!("bench-{count}")).await?;
            }
            app.close().await?;
        }
    }
    Ok(())
}

/// Import (issue 5): a dropped folder with new, identical, conflicting and invalid
/// blueprints. A real OS drop cannot be scripted under Xvfb, so the test dispatches the
/// window's `bpv:import-paths` event with the folder's path: it reaches the same
/// handler (`importPaths` in TransferHost.svelte) that the webview's drag-drop event
/// calls, and from there the same `import_plan`/`import_apply` commands.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built app, tauri-driver, WebKitWebDriver and a display: run scripts/e2e.sh"]
async fn import_dropped_folder() -> Res<()> {
    let world = World::new()?;
    corpus(&world, 40)?;
    let lib = world.library();
    let same = "name: Same Qelvranth\nnodes:\n  - id: a\n    type: http\n";
    let clash_old = "name: Clash Qelvranth\nnodes:\n  - id: a\n    type: http\n";
    let clash_new = "name: Clash Qelvranth\ndescription: the dropped one\nnodes:\n  - id: a\n    type: slack\n";
    let fresh = "name: Fresh Qelvranth\nnodes:\n  - id: a\n    type: http\n  - id: b\n    type: slack\nedges:\n  - {from: a, to: b}\n";
    let broken = "name: Broken Qelvranth\nnodes:\n  - id: a\n    type: t\n  - id: a\n    type: t\n";
    std::fs::create_dir_all(lib.join("Blueprints/personal/flows"))?;
    std::fs::write(lib.join("Blueprints/personal/flows/same.blueprint.yaml"), same)?;
    std::fs::write(lib.join("Blueprints/personal/flows/clash.blueprint.yaml"), clash_old)?;
    let src = world.dir.path().join("drop/flows");
    std::fs::create_dir_all(&src)?;
    std::fs::write(src.join("same.blueprint.yaml"), same)?;
    std::fs::write(src.join("clash.blueprint.yaml"), clash_new)?;
    std::fs::write(src.join("fresh.yaml"), fresh)?;
    std::fs::write(src.join("broken.yaml"), broken)?;
    std::fs::write(src.join("README.md"), "not a blueprint")?;

    let app = App::launch(&world).await?;
    let result = import_flow(&app, &world, &src, clash_new, fresh).await;
    if result.is_err() {
        let _ = app.screenshot("import-failure").await;
    }
    app.close().await?;
    result
}

async fn import_flow(app: &App, world: &World, src: &Path, clash_new: &str, fresh: &str) -> Res<()> {
    app.until("the first rows", T, "return document.querySelectorAll('[data-testid=blueprint-row]').length").await?;
    // The drop handler, reached as the webview's drop event reaches it (see above).
    app.js(&format!(
        "window.dispatchEvent(new CustomEvent('bpv:import-paths', {{ detail: [{}] }}))",
        serde_json::to_string(&src.to_string_lossy())?
    ))
    .await?;
    app.until(
        "the dry-run report",
        T,
        "const d = document.querySelector('[data-testid=import-dialog]'); return d && d.dataset.phase === 'report'",
    )
    .await?;
    let classes = app
        .js("return Object.fromEntries([...document.querySelectorAll('[data-testid=import-item]')].map(r => [r.dataset.source.split('/').pop(), r.dataset.class]))")
        .await?;
    let expected = serde_json::json!({
        "same.blueprint.yaml": "identical",
        "clash.blueprint.yaml": "conflict",
        "fresh.yaml": "new",
        "broken.yaml": "invalid",
    });
    assert_eq!(classes, expected, "the report classifies every dropped file");
    let invalid =
        app.js("return document.querySelector('[data-testid=import-item][data-class=invalid]').textContent").await?;
    assert!(invalid.as_str().unwrap_or("").contains("line "), "the invalid item shows its line: {invalid}");
    app.screenshot("import-01-report").await?;

    // Overwrite the conflict (for all), then import.
    app.js("[...document.querySelectorAll('input[name=forall]')].find(i => i.value === 'overwrite').click()").await?;
    app.until(
        "the overwrite choice",
        T,
        "return document.querySelector('[data-testid=import-item][data-class=conflict] select').value === 'overwrite'",
    )
    .await?;
    app.click("[data-testid=import-apply]").await?;
    app.until(
        "the summary",
        T,
        "const d = document.querySelector('[data-testid=import-dialog]'); return d && d.dataset.phase === 'done'",
    )
    .await?;
    let summary = app
        .js("return ['imported','identical','skipped','errors'].map(k => document.querySelector('[data-testid=summary-' + k + ']').textContent.trim())")
        .await?;
    assert_eq!(summary, serde_json::json!(["2", "1", "0", "1"]), "imported, identical, skipped, errors");
    app.screenshot("import-02-summary").await?;

    // On disk: the new file and the overwritten one carry the dropped bytes; nothing for the invalid one.
    let lib = world.library();
    assert_eq!(std::fs::read_to_string(lib.join("Blueprints/personal/flows/fresh.blueprint.yaml"))?, fresh);
    assert_eq!(std::fs::read_to_string(lib.join("Blueprints/personal/flows/clash.blueprint.yaml"))?, clash_new);
    assert!(!lib.join("Blueprints/personal/flows/broken.blueprint.yaml").exists());

    // The list shows the imported blueprint.
    app.click("[data-testid=import-close]").await?;
    search_for(app, "Fresh Qelvranth").await?;
    app.until(
        "the imported row",
        T,
        "return [...document.querySelectorAll('[data-testid=blueprint-row]')].some(r => r.dataset.path === 'Blueprints/personal/flows/fresh.blueprint.yaml')",
    )
    .await?;
    app.screenshot("import-03-listed").await?;

    // Export the search results: the secret scan runs first, then a bundle lands in Exports/.
    app.click("[data-testid=export-button]").await?;
    let counted = app
        .until(
            "the export check",
            T,
            "const e = document.querySelector('[data-testid=export-count]'); return e && e.textContent",
        )
        .await?;
    assert!(counted.as_str().unwrap_or("").starts_with("1 blueprint"), "one search result: {counted}");
    app.screenshot("import-04-export").await?;
    app.click("[data-testid=export-go]").await?;
    let exports = world.library().join("Exports");
    let deadline = std::time::Instant::now() + T;
    loop {
        let zips = walk_names(&exports, ".zip");
        if let Some(zip) = zips.first() {
            assert!(std::fs::metadata(zip)?.len() > 0, "the bundle {zip} has content");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no bundle in {}", exports.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Backup and restore (issue 6): back up now → the snapshot is listed → delete a
/// blueprint in the app → restore it from the snapshot → the bytes are identical.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built app, tauri-driver, WebKitWebDriver and a display: run scripts/e2e.sh"]
async fn backup_delete_restore() -> Res<()> {
    let world = World::new()?;
    corpus(&world, 40)?;
    let app = App::launch(&world).await?;
    let result = backup_flow(&app, &world).await;
    if result.is_err() {
        let _ = app.screenshot("backup-failure").await;
    }
    app.close().await?;
    result
}

async fn backup_flow(app: &App, world: &World) -> Res<()> {
    app.until("the first rows", T, "return document.querySelectorAll('[data-testid=blueprint-row]').length").await?;
    let target = app.row_paths().await?.into_iter().next().ok_or("no rows")?;
    let file = world.library().join(&target);
    let original = std::fs::read(&file)?;

    app.click("[data-testid=backups-button]").await?;
    app.until("the backups view", T, "return !!document.querySelector('[data-testid=backups-view]')").await?;
    app.screenshot("backup-01-empty").await?;
    app.click("[data-testid=backup-now]").await?;
    let id = app
        .until(
            "the backup result",
            T,
            "const r = document.querySelector('[data-testid=backup-result]'); return r && r.dataset.id",
        )
        .await?;
    let id = id.as_str().ok_or("no snapshot id")?.to_owned();
    let shown = app.js("return document.querySelector('[data-testid=backup-result]').textContent").await?;
    assert!(shown.as_str().unwrap_or("").contains("verified"), "the backup was verified: {shown}");
    app.until(
        "the snapshot row",
        T,
        &format!("return !!document.querySelector('[data-testid=snapshot][data-id={}]')", serde_json::to_string(&id)?),
    )
    .await?;
    // The repository on disk has that snapshot (the default location, in the data dir).
    let snapshots: Vec<_> = walk_names(&world.data_dir(), ".json").into_iter().filter(|p| p.contains(&id)).collect();
    assert!(!snapshots.is_empty(), "snapshot {id} is on disk");
    app.screenshot("backup-02-snapshot").await?;

    // Delete it in the app.
    app.click("button.back").await?;
    let target_row = format!("[data-testid=blueprint-row][data-path={}]", serde_json::to_string(&target)?);
    app.until(
        "the row to delete",
        T,
        &format!("return !!document.querySelector({})", serde_json::to_string(&target_row)?),
    )
    .await?;
    app.click(&target_row).await?;
    app.until("the detail pane", T, "return !!document.querySelector('[data-testid=delete]')").await?;
    app.click("[data-testid=delete]").await?;
    let deadline = std::time::Instant::now() + T;
    while file.exists() {
        assert!(std::time::Instant::now() < deadline, "{} still exists after delete", file.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Restore it from the snapshot.
    app.click("[data-testid=backups-button]").await?;
    app.until("the backups view", T, "return !!document.querySelector('[data-testid=backups-view]')").await?;
    // A table row: clicked from the page (WebDriver refuses `tr` elements as not interactable).
    let snapshot_row = format!("[data-testid=snapshot][data-id={}]", serde_json::to_string(&id)?);
    app.until("the snapshot row", T, &format!("return !!document.querySelector('{snapshot_row}')")).await?;
    app.js(&format!("document.querySelector('{snapshot_row}').click()")).await?;
    let row = format!("[data-testid=snapshot-file][data-path={}]", serde_json::to_string(&target)?);
    app.type_into("[data-testid=backups-view] input[type=search]", &target).await?;
    app.until("the file in the snapshot", T, &format!("return !!document.querySelector('{row}')")).await?;
    app.screenshot("backup-03-contents").await?;
    app.click(&format!("{row} [data-testid=restore-file]")).await?;
    let deadline = std::time::Instant::now() + T;
    while !file.exists() {
        assert!(std::time::Instant::now() < deadline, "{} was not restored", file.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(std::fs::read(&file)?, original, "the restored file is byte-identical");
    // The back button has a row of its own: the view scrolled to its end never slides under it.
    let overlap = app
        .js("const v = document.querySelector('[data-testid=backups-view]'); v.scrollTop = v.scrollHeight; \
             const b = document.querySelector('button.back').getBoundingClientRect(); \
             const r = v.parentElement.getBoundingClientRect(); \
             return [v.scrollTop, b.bottom > r.top && b.top < r.bottom && b.right > r.left && b.left < r.right]")
        .await?;
    assert_eq!(overlap[1], serde_json::Value::Bool(false), "the back button overlaps the scrolled view: {overlap}");
    app.screenshot("backup-03b-scrolled").await?;
    app.click("button.back").await?;
    app.until(
        "the restored row",
        T,
        &format!(
            "return !!document.querySelector('[data-testid=blueprint-row][data-path=' + JSON.stringify({}) + ']')",
            serde_json::to_string(&target)?
        ),
    )
    .await?;
    app.screenshot("backup-04-restored").await?;

    // Prune (keep the last 1): a second backup, the preview names the first as going, then
    // Prune now leaves one snapshot, in the list and on disk.
    app.click("[data-testid=backups-button]").await?;
    app.until("the backups view", T, "return !!document.querySelector('[data-testid=backups-view]')").await?;
    app.click("[data-testid=backup-now]").await?;
    let second = app
        .until(
            "the second backup",
            T,
            &format!(
                "const r = document.querySelector('[data-testid=backup-result]'); return r && r.dataset.id !== {} && r.dataset.id",
                serde_json::to_string(&id)?
            ),
        )
        .await?;
    let second = second.as_str().ok_or("no second snapshot id")?.to_owned();
    app.until("two snapshots", T, "return document.querySelectorAll('[data-testid=snapshot]').length === 2").await?;
    app.type_into("[data-testid=prune-keep-last]", "1").await?;
    app.click("[data-testid=prune-preview]").await?;
    let going = app
        .until(
            "the prune preview",
            T,
            "const r = [...document.querySelectorAll('[data-testid=prune-removed-row]')]; return r.length > 0 && r.map(e => e.dataset.id).join(',')",
        )
        .await?;
    assert_eq!(going.as_str(), Some(id.as_str()), "the older snapshot is the one going");
    let kept = app
        .js("return [...document.querySelectorAll('[data-testid=prune-kept-row]')].map(e => e.dataset.id).join(',')")
        .await?;
    assert_eq!(kept.as_str(), Some(second.as_str()));
    app.screenshot("backup-05-prune-preview").await?;
    // The confirmation is the webview's own dialog: accepted from the page.
    app.js("window.confirm = () => true; return true").await?;
    app.click("[data-testid=prune-now]").await?;
    app.until("the prune result", T, "return !!document.querySelector('[data-testid=prune-result]')").await?;
    app.until("one snapshot", T, "return document.querySelectorAll('[data-testid=snapshot]').length === 1").await?;
    let left = app.js("return document.querySelector('[data-testid=snapshot]').dataset.id").await?;
    assert_eq!(left.as_str(), Some(second.as_str()));
    let on_disk: Vec<_> = walk_names(&world.data_dir(), ".json").into_iter().filter(|p| p.contains(&id)).collect();
    assert!(on_disk.is_empty(), "the pruned snapshot is gone from disk: {on_disk:?}");
    app.screenshot("backup-06-pruned").await?;

    // Credentials in a backup: sealed under a passphrase typed twice; restoring that
    // snapshot asks for it, and a wrong one is refused with nothing restored.
    app.click("[data-testid=backup-with-credentials]").await?;
    app.type_into("[data-testid=backup-passphrase]", "correct horse").await?;
    app.type_into("[data-testid=backup-passphrase-again]", "correct horse").await?;
    app.click("[data-testid=backup-now]").await?;
    app.until("the sealed backup", T, "return !!document.querySelector('[data-testid=backup-sealed]')").await?;
    app.until("the restore passphrase", T, "return !!document.querySelector('[data-testid=restore-passphrase]')")
        .await?;
    app.type_into("[data-testid=restore-passphrase]", "wrong horse").await?;
    let before = std::fs::read(&file)?;
    app.click("[data-testid=restore-here]").await?;
    app.until(
        "the refusal",
        T,
        "return !!document.querySelector('[data-testid=backups-view]') && document.body.textContent.includes('passphrase is wrong')",
    )
    .await?;
    assert!(app.js("return !document.querySelector('[data-testid=restore-result]')").await?.as_bool() == Some(true));
    assert_eq!(std::fs::read(&file)?, before, "a refused restore changed the library");
    app.screenshot("backup-07-wrong-passphrase").await?;
    Ok(())
}

/// Every file under `dir` whose name ends with `suffix`.
fn walk_names(dir: &Path, suffix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out
}
