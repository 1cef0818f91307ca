//! A real S3-compatible server for tests and benchmarks: moto in server mode, started
//! on a free loopback port and stopped when dropped.
//!
//! The server is found as `$MOTO_SERVER`, else `moto_server` on the `PATH`, else in a
//! virtual environment under the system's temporary directory, which is created with
//! `python3 -m venv` and `pip install 'moto[server]'` the first time it is needed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The access key the test servers accept (moto accepts any key unless told to check).
pub const ACCESS_KEY: &str = "traceql-test";
/// The secret key that goes with [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "traceql-test-secret";

/// A running moto server.
#[derive(Debug)]
pub struct S3TestServer {
    child: Child,
    port: u16,
}

/// Serialises installation when several tests start servers at once.
static INSTALL: Mutex<()> = Mutex::new(());

impl S3TestServer {
    /// Starts a server that accepts any credentials.
    pub fn start() -> Result<S3TestServer, String> {
        S3TestServer::spawn(&[])
    }

    /// Starts a server that checks credentials and knows none, so every request is
    /// refused as a real S3 refuses an unknown access key.
    pub fn start_checking_credentials() -> Result<S3TestServer, String> {
        S3TestServer::spawn(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")])
    }

    fn spawn(env: &[(&str, &str)]) -> Result<S3TestServer, String> {
        let program = moto_server()?;
        let port = free_port()?;
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let mut server = S3TestServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{} exited at start: {status}", program.display()));
            }
            if server.request("GET", "/moto-api/").is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not answer within 60 s", program.display()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `object_store` settings (key, value) that go with [`Self::endpoint`]: the
    /// test credentials and a region.
    pub fn credentials(&self) -> Vec<(String, String)> {
        vec![
            ("aws_access_key_id".into(), ACCESS_KEY.into()),
            ("aws_secret_access_key".into(), SECRET_KEY.into()),
            ("aws_region".into(), "us-east-1".into()),
        ]
    }

    /// Environment variables that point the AWS settings of a child process at this
    /// server with the test credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// Creates a bucket (only on a server that does not check credentials).
    pub fn create_bucket(&self, name: &str) -> Result<(), String> {
        let status = self.request("PUT", &format!("/{name}"))?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("creating bucket {name} returned HTTP {status}"))
        }
    }

    /// Copies every file under `dir` into `bucket`, at its path under `dir` (only on a
    /// server that does not check credentials).
    pub fn upload_dir(&self, bucket: &str, dir: &std::path::Path) -> Result<(), String> {
        let mut pending = vec![dir.to_path_buf()];
        while let Some(at) = pending.pop() {
            let entries = std::fs::read_dir(&at).map_err(|e| format!("{}: {e}", at.display()))?;
            for entry in entries {
                let path = entry.map_err(|e| e.to_string())?.path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let body = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let key = path
                    .strip_prefix(dir)
                    .map_err(|e| e.to_string())?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let status = self.request_with("PUT", &format!("/{bucket}/{key}"), &body)?;
                if status != 200 {
                    return Err(format!("uploading {key} returned HTTP {status}"));
                }
            }
        }
        Ok(())
    }

    /// Sends an unsigned request with an empty body and returns the status code.
    fn request(&self, method: &str, path: &str) -> Result<u16, String> {
        self.request_with(method, path, &[])
    }

    /// Sends an unsigned request with `body` and returns the status code.
    fn request_with(&self, method: &str, path: &str, body: &[u8]) -> Result<u16, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )
        .map_err(|e| e.to_string())?;
        stream.write_all(body).map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader
            .read_line(&mut status_line)
            .map_err(|e| e.to_string())?;
        let _ = reader.read_to_end(&mut Vec::new());
        status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("unexpected answer: {status_line:?}"))
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// The moto server program, installed into a virtual environment if need be.
fn moto_server() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return Ok(PathBuf::from(path));
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|candidate| candidate.is_file())
    }) {
        return Ok(found);
    }
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let venv = std::env::temp_dir().join("traceql-moto-venv");
    let program = venv.join("bin").join("moto_server");
    if program.is_file() {
        return Ok(program);
    }
    let run = |cmd: &mut Command| -> Result<(), String> {
        let output = cmd
            .output()
            .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    };
    let install = || -> Result<(), String> {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run(Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", "moto[server]"]))
    };
    install().map_err(|e| {
        format!(
            "the S3 tests need moto's server and installing it failed ({e}); \
             install it with `pip install 'moto[server]'` or set MOTO_SERVER"
        )
    })?;
    Ok(program)
}
