//! A harness for driving the real Blueprint Vault app: `tauri-driver` (which starts
//! `WebKitWebDriver`, which starts the app) with HOME, XDG dirs, the library and the
//! data dir all in a temporary folder, and a WebDriver client (`fantoccini`).
//!
//! Run GUI tests inside `dbus-run-session -- xvfb-run -a …` (see scripts/e2e.sh).
//! Paths come from the environment when set: `BPV_APP_BIN` (the app, built once in
//! debug), `TAURI_DRIVER` (else `tauri-driver` on PATH or in ~/.cargo/bin).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The folder for screenshots: `target/e2e-artifacts` (or `$BPV_E2E_ARTIFACTS`).
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("BPV_E2E_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-artifacts"));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The app binary: `$BPV_APP_BIN`, else `blueprint-vault` beside this test's target dir.
pub fn app_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BPV_APP_BIN") {
        return PathBuf::from(p);
    }
    // target/debug/deps/<test>-<hash> → target/debug/blueprint-vault
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).map(|d| d.join("blueprint-vault")).expect("target dir")
}

fn tauri_driver() -> PathBuf {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        return PathBuf::from(p);
    }
    let home_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tauri-driver"));
    match home_bin {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("tauri-driver"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(4444)
}

/// A private world for one app run: HOME, XDG dirs, the library and the data dir.
pub struct World {
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> Res<World> {
        let dir = tempfile::Builder::new().prefix("bpv-e2e-").tempdir()?;
        for sub in ["home", "home/.config", "home/.cache", "home/.local/share", "runtime", "data", "library"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path().join("runtime"), std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(World { dir })
    }

    pub fn library(&self) -> PathBuf {
        self.dir.path().join("library")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn env(&self) -> Vec<(&'static str, PathBuf)> {
        let d = self.dir.path();
        vec![
            ("HOME", d.join("home")),
            ("XDG_CONFIG_HOME", d.join("home/.config")),
            ("XDG_CACHE_HOME", d.join("home/.cache")),
            ("XDG_DATA_HOME", d.join("home/.local/share")),
            ("XDG_RUNTIME_DIR", d.join("runtime")),
            ("BPV_LIBRARY", self.library()),
            ("BPV_DATA_DIR", self.data_dir()),
        ]
    }
}

/// The running app, driven over WebDriver. `close` ends it (also tried on drop).
pub struct App {
    pub client: Client,
    driver: Child,
    pub started: Instant,
    /// When the WebDriver session (and so the app's window) was up.
    pub session_millis: u128,
}

impl App {
    pub async fn launch(world: &World) -> Res<App> {
        let app = app_binary();
        if !app.exists() {
            return Err(format!("no app at {} (build it: cargo build -p blueprint-vault)", app.display()).into());
        }
        // The ports are free when picked but may be taken before the driver binds them
        // (another test, a Garage node): such a start fails fast, so try fresh ports.
        let mut last_error = None;
        for _ in 0..3 {
            match Self::launch_once(world, &app).await {
                Ok(started) => return Ok(started),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| "the app did not start".into()))
    }

    async fn launch_once(world: &World, app: &Path) -> Res<App> {
        let port = free_port();
        let native_port = free_port();
        let mut cmd = Command::new(tauri_driver());
        cmd.args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in world.env() {
            cmd.env(k, v);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let driver = cmd.spawn().map_err(|e| format!("cannot start tauri-driver ({e}): run scripts/setup.sh"))?;
        // Owned from here on, so every early return stops the driver.
        let mut guard = DriverGuard(Some(driver));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("tauri-driver did not start listening".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({ "tauri:options": { "application": app } });
        let caps = caps.as_object().cloned().unwrap_or_default();
        let started = Instant::now();
        let client = ClientBuilder::native().capabilities(caps).connect(&url).await?;
        let session_millis = started.elapsed().as_millis();
        let _ = client.set_window_size(1280, 800).await;
        let driver = guard.0.take().ok_or("tauri-driver is gone")?;
        Ok(App { client, driver, started, session_millis })
    }

    /// Run a script in the page and return its value.
    pub async fn js(&self, script: &str) -> Res<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Wait until `script` returns something truthy; return it.
    pub async fn until(&self, what: &str, timeout: Duration, script: &str) -> Res<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(script).await?;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("") && v != json!([]);
            if truthy {
                return Ok(v);
            }
            if Instant::now() > deadline {
                let _ = self.screenshot(&format!("timeout-{}", what.replace(' ', "-"))).await;
                return Err(format!("timed out waiting for {what}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The paths of the rows in the list, in order (only the rendered window of it).
    pub async fn row_paths(&self) -> Res<Vec<String>> {
        let v = self
            .js("return [...document.querySelectorAll('[data-testid=blueprint-row]')].map(r => r.dataset.path)")
            .await?;
        Ok(serde_json::from_value(v)?)
    }

    /// The total the list says it shows.
    pub async fn list_total(&self) -> Res<Option<u64>> {
        let v = self
            .js("const e = document.querySelector('[data-testid=result-count]'); return e && e.textContent.trim() ? Number(e.dataset.total) : null")
            .await?;
        Ok(v.as_u64())
    }

    /// Click like a person: scroll the element to the middle of its view first, so a
    /// toast or a bar along the window's edge is not what receives the click.
    pub async fn click(&self, css: &str) -> Res<()> {
        let element = self.client.find(Locator::Css(css)).await?;
        let arg = serde_json::to_value(&element)?;
        self.client.execute("arguments[0].scrollIntoView({ block: 'center', inline: 'nearest' })", vec![arg]).await?;
        element.click().await?;
        Ok(())
    }

    pub async fn type_into(&self, css: &str, text: &str) -> Res<()> {
        self.client.find(Locator::Css(css)).await?.send_keys(text).await?;
        Ok(())
    }

    pub async fn screenshot(&self, name: &str) -> Res<PathBuf> {
        // Let the webview paint what the DOM already says.
        let _ =
            self.js("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))").await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let png = self.client.screenshot().await?;
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// The app's process ids: the app itself and its WebKit helper processes.
    pub fn app_pids(&self) -> Vec<u32> {
        let app = app_binary();
        let app = std::fs::canonicalize(&app).unwrap_or(app);
        let mut all: Vec<(u32, u32, String)> = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
                let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
                let ppid =
                    stat.rsplit(')').next().and_then(|s| s.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
                let exe = std::fs::read_link(e.path().join("exe"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                all.push((pid, ppid.unwrap_or(0), exe));
            }
        }
        let roots: Vec<u32> = all.iter().filter(|(_, _, exe)| Path::new(exe) == app).map(|(p, _, _)| *p).collect();
        let mut out = roots.clone();
        let mut frontier = roots;
        while let Some(p) = frontier.pop() {
            for (c, pp, _) in &all {
                if *pp == p && !out.contains(c) {
                    out.push(*c);
                    frontier.push(*c);
                }
            }
        }
        out
    }

    pub async fn close(mut self) -> Res<()> {
        let r = self.client.clone().close().await;
        self.stop_driver();
        r.map_err(Into::into)
    }

    fn stop_driver(&mut self) {
        stop_driver(&mut self.driver);
    }
}

/// A started tauri-driver not yet handed to an `App`: stopped if the start fails.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(mut driver) = self.0.take() {
            stop_driver(&mut driver);
        }
    }
}

fn stop_driver(driver: &mut Child) {
    #[cfg(unix)]
    unsafe_kill_group(driver.id());
    let _ = driver.kill();
    let _ = driver.wait();
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop_driver();
    }
}

#[cfg(unix)]
fn unsafe_kill_group(pid: u32) {
    // SIGTERM to the driver's process group (tauri-driver, WebKitWebDriver, the app).
    let _ = Command::new("kill").args(["-TERM", "--", &format!("-{pid}")]).status();
}

/// Memory of processes: (RSS, PSS) in KiB, summed, from /proc/PID/smaps_rollup.
pub fn memory_kib(pids: &[u32]) -> (u64, u64) {
    let mut rss = 0;
    let mut pss = 0;
    for pid in pids {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            for line in s.lines() {
                let mut parts = line.split_whitespace();
                let (Some(k), Some(v)) = (parts.next(), parts.next()) else { continue };
                let v: u64 = v.parse().unwrap_or(0);
                match k {
                    "Rss:" => rss += v,
                    "Pss:" => pss += v,
                    _ => {}
                }
            }
        }
    }
    (rss, pss)
}
