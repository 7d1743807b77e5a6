//! The client side, used by `rvswitch-appctl` and the tests.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::protocol::Reply;

/// Why a call got no answer (as opposed to an error answer, which is `Ok(Err(text))`).
#[derive(Debug, thiserror::Error)]
pub enum AppctlError {
    /// The socket could not be reached.
    #[error("cannot connect to {path}: {source} (is rvswitch running?)")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// Reading or writing failed, or the server closed without answering.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The answer was not a JSON-RPC reply.
    #[error("malformed reply: {0}")]
    BadReply(String),
}

/// Sends one command and waits for its reply (at most `timeout`). Returns the result text,
/// or the server's error text.
pub fn call(
    socket: &Path,
    method: &str,
    params: &[String],
    timeout: Option<Duration>,
) -> Result<Result<String, String>, AppctlError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| AppctlError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    stream.set_read_timeout(timeout)?;
    let request = json!({"id": 0, "method": method, "params": params});
    stream.write_all(request.to_string().as_bytes())?;
    let mut values = serde_json::Deserializer::from_reader(&stream).into_iter::<Value>();
    let value = match values.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) if e.is_io() || e.is_eof() => {
            return Err(AppctlError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("connection closed without a reply: {e}"),
            )))
        }
        Some(Err(e)) => return Err(AppctlError::BadReply(e.to_string())),
        None => {
            return Err(AppctlError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed without a reply",
            )))
        }
    };
    let reply: Reply =
        serde_json::from_value(value).map_err(|e| AppctlError::BadReply(e.to_string()))?;
    match (reply.result, reply.error) {
        (_, Some(e)) => Ok(Err(e)),
        (Some(r), None) => Ok(Ok(r)),
        (None, None) => Err(AppctlError::BadReply("neither result nor error".into())),
    }
}
