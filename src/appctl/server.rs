//! The socket side: accept thread, one thread per connection, stream of JSON requests.

use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use super::protocol::{decode_request, Reply};
use super::registry::CommandRegistry;

/// Connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 64;
/// Bytes one connection may send in total (a guard against a client streaming garbage).
const MAX_CONNECTION_BYTES: u64 = 4 << 20;
/// A connection idle this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// A running control socket. Stopping (or dropping) it closes the listener, waits for the
/// accept thread and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Binds `path` (mode 0600; a stale socket left by a dead daemon is replaced, a live one
    /// is an error) and starts serving `registry`.
    pub fn start(path: &Path, registry: Arc<CommandRegistry>) -> io::Result<ControlServer> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running rvswitch", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        // Create with no permissions for group/other from the start, then pin to 0600.
        let old_mask = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(path);
        unsafe { libc::umask(old_mask) };
        let listener = bound?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let accept = std::thread::Builder::new()
            .name("appctl".into())
            .spawn(move || accept_loop(listener, registry, stop2))?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            accept: Some(accept),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting and removes the socket file. Connections already open finish their
    /// current request on their own threads.
    pub fn stop(&mut self) {
        if let Some(handle) = self.accept.take() {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the blocking accept().
            let _ = UnixStream::connect(&self.path);
            let _ = handle.join();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: UnixListener, registry: Arc<CommandRegistry>, stop: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("control socket accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            tracing::warn!("control socket: too many connections, closing a new one");
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let registry = registry.clone();
        let active2 = active.clone();
        let spawned = std::thread::Builder::new()
            .name("appctl-conn".into())
            .spawn(move || {
                if let Err(e) = serve_connection(stream, &registry) {
                    tracing::debug!("control connection ended: {e}");
                }
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve_connection(stream: UnixStream, registry: &CommandRegistry) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut out = stream.try_clone()?;
    let reader = BufReader::new(stream).take(MAX_CONNECTION_BYTES);
    let values = serde_json::Deserializer::from_reader(reader).into_iter::<Value>();
    for value in values {
        let value = match value {
            Ok(v) => v,
            Err(e) if e.is_eof() || e.is_io() => return Ok(()),
            Err(e) => {
                // The stream can't be resynchronised after a syntax error: answer, then close.
                let reply =
                    Reply::from_outcome(Value::Null, Err(format!("malformed JSON request: {e}")));
                send(&mut out, &reply)?;
                return Ok(());
            }
        };
        let (id, request) = decode_request(value);
        let outcome = match request {
            Ok((method, params)) => {
                tracing::debug!(%method, ?params, "control request");
                // A bug in one command must not take the connection (or the daemon) down
                // without an answer.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    registry.dispatch(&method, &params)
                }))
                .unwrap_or_else(|_| Err(format!("internal error while running \"{method}\"")))
            }
            Err(e) => Err(format!("bad request: {e}")),
        };
        send(&mut out, &Reply::from_outcome(id, outcome))?;
    }
    Ok(())
}

fn send(out: &mut UnixStream, reply: &Reply) -> io::Result<()> {
    let bytes = serde_json::to_vec(reply).map_err(io::Error::other)?;
    out.write_all(&bytes)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(dir: &Path) -> ControlServer {
        let mut r = CommandRegistry::new();
        r.register("echo", "ARGS...", 0, 10, |a| Ok(a.join(",")));
        r.register("boom", "", 0, 0, |_| panic!("deliberate test panic"));
        ControlServer::start(&dir.join("t.ctl"), Arc::new(r)).unwrap()
    }

    #[test]
    fn serves_requests_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = server(dir.path());
        let path = s.path().to_path_buf();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let r = super::super::call(&path, "echo", &["a".into(), "b".into()], None).unwrap();
        assert_eq!(r, Ok("a,b".into()));
        let r = super::super::call(&path, "missing", &[], None).unwrap();
        assert!(r.unwrap_err().contains("not a valid command"));
        // A second server on the same live socket is refused.
        let mut r = CommandRegistry::new();
        r.register("x", "", 0, 0, |_| Ok(String::new()));
        assert!(ControlServer::start(&path, Arc::new(r)).is_err());
        s.stop();
        assert!(!path.exists());
    }

    #[test]
    fn several_requests_on_one_connection_and_malformed_json() {
        let dir = tempfile::tempdir().unwrap();
        let s = server(dir.path());
        let mut c = UnixStream::connect(s.path()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(
            br#"{"id":1,"method":"echo","params":["x"]}{"id":"two","method":"echo","params":[]}"#,
        )
        .unwrap();
        let mut it = serde_json::Deserializer::from_reader(&c).into_iter::<Value>();
        let a = it.next().unwrap().unwrap();
        assert_eq!(a, serde_json::json!({"id":1,"result":"x","error":null}));
        let b = it.next().unwrap().unwrap();
        assert_eq!(b["id"], "two");
        drop(it);
        c.write_all(b"{\"id\":3,\"method\":}").unwrap();
        let mut rest = String::new();
        c.read_to_string(&mut rest).unwrap();
        let reply: Value = serde_json::from_str(&rest).unwrap();
        assert!(
            reply["error"].as_str().unwrap().contains("malformed JSON"),
            "{rest}"
        );
        // A panicking command gets an error reply; the server survives and still answers.
        let r = super::super::call(s.path(), "boom", &[], None).unwrap();
        assert!(r
            .unwrap_err()
            .contains("internal error while running \"boom\""));
        let r = super::super::call(s.path(), "echo", &["ok".into()], None).unwrap();
        assert_eq!(r, Ok("ok".into()));
    }
}
