//! Client of the rvswitch control socket: `rvswitch-appctl [-t SOCKET] COMMAND [ARGS...]`.
//!
//! Prints the command's output; on an error reply prints the error on stderr and exits 2
//! (as ovs-appctl does). The socket defaults to `$RVSWITCH_RUN_DIR/rvswitch.ctl`, else
//! `/var/run/rvswitch/rvswitch.ctl`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rvswitch::appctl::{self, SOCKET_NAME};
use rvswitch::config::DEFAULT_RUN_DIR;

#[derive(Parser, Debug)]
#[command(name = "rvswitch-appctl", version = rvswitch::VERSION, about = "Send a command to a running rvswitch")]
struct Cli {
    /// Control socket (default: $RVSWITCH_RUN_DIR/rvswitch.ctl or /var/run/rvswitch/rvswitch.ctl).
    #[arg(short = 't', long = "target")]
    target: Option<PathBuf>,
    /// Seconds to wait for the reply (0 = forever).
    #[arg(short = 'T', long = "timeout", default_value_t = 30)]
    timeout: u64,
    /// The command (list-commands shows them all).
    command: String,
    /// Its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = cli.target.unwrap_or_else(|| {
        let dir = std::env::var_os("RVSWITCH_RUN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR));
        dir.join(SOCKET_NAME)
    });
    let timeout = (cli.timeout > 0).then(|| Duration::from_secs(cli.timeout));
    match appctl::call(&socket, &cli.command, &cli.args, timeout) {
        Ok(Ok(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Err(text)) => {
            eprint!("{text}");
            if !text.ends_with('\n') {
                eprintln!();
            }
            eprintln!(
                "rvswitch-appctl: {}: server returned an error",
                socket.display()
            );
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("rvswitch-appctl: {e}");
            ExitCode::from(1)
        }
    }
}
