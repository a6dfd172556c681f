fn main() {
    // The UI is embedded from ui/dist (tauri.conf.json `frontendDist`). A plain
    // `cargo build` before the UI is built gets a page that says how to build it,
    // instead of failing the whole workspace build.
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/dist");
    if !dist.join("index.html").exists() {
        let _ = std::fs::create_dir_all(&dist);
        let _ = std::fs::write(
            dist.join("index.html"),
            "<!doctype html><meta charset=utf-8><title>Blueprint Vault</title>\
             <p>The UI has not been built: run <code>npm --prefix ui ci &amp;&amp; npm --prefix ui run build</code>, then rebuild.</p>\n",
        );
    }
    println!("cargo:rerun-if-changed=ui/dist");
    tauri_build::build()
}
