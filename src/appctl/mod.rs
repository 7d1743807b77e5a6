//! The control socket: JSON-RPC 1.0 over a unix socket, as Open vSwitch's unixctl speaks it.
//!
//! A request is `{"id":N,"method":"pmd-stats-show","params":["arg",...]}` (params are
//! strings), written without a delimiter; the reply is `{"id":N,"result":"text","error":null}`
//! or `{"id":N,"result":null,"error":"text"}`. That is exactly what Debian's
//! `ovs-appctl -t <socket> <command> [args]` sends and expects, so it works against
//! rvswitch as well as `rvswitch-appctl` does.
//!
//! The server runs on its own threads (one accepting, one per connection) and hands each
//! request to a `CommandRegistry`, which checks the argument count against the command's
//! declared bounds before calling it, so handlers never see a malformed request.

mod client;
mod protocol;
mod registry;
mod server;

pub use client::{call, AppctlError};
pub use protocol::{Reply, Request};
pub use registry::{CommandRegistry, CommandResult};
pub use server::ControlServer;

/// File name of the control socket inside the run directory.
pub const SOCKET_NAME: &str = "rvswitch.ctl";
