//! The rvswitch daemon: `rvswitch --config /etc/rvswitch/switch.toml`.
//!
//! Loads and validates the config (errors name file:line and exit with code 2), builds the
//! bridges, serves the control socket, and on SIGINT/SIGTERM or the `exit` command shuts
//! down cleanly: PMD threads joined, ports closed (XDP programs detached, tap devices
//! removed), control socket removed. SIGHUP (or `rvswitch-appctl reload`) re-reads the
//! config file and applies what changed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Parser;
use rvswitch::appctl::{CommandRegistry, ControlServer, SOCKET_NAME};
use rvswitch::bridge::Switch;
use rvswitch::config::Config;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{reload, EnvFilter, Registry};

#[derive(Parser, Debug)]
#[command(name = "rvswitch", version = rvswitch::VERSION, about = "Userspace poll-mode virtual switch")]
struct Cli {
    /// The switch configuration.
    #[arg(short, long, default_value = "/etc/rvswitch/switch.toml")]
    config: PathBuf,
    /// Overrides global.run_dir (control socket and state file).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Overrides global.log_level (a tracing filter: error, warn, info, debug, trace).
    #[arg(long)]
    log_level: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvswitch: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&config.global.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "rvswitch: invalid log level '{}': {e}",
                config.global.log_level
            );
            return ExitCode::from(2);
        }
    };
    let (filter, handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only on a terminal: not in a log file or the journal.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    let log = Arc::new(LogFilter {
        handle,
        current: Mutex::new(config.global.log_level.clone()),
    });
    match run(config, cli, log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("rvswitch: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The config file with the command line's overrides applied (at start and on reload).
fn load_config(cli: &Cli) -> Result<Config, rvswitch::config::ConfigError> {
    let mut config = Config::load(&cli.config)?;
    if let Some(dir) = &cli.run_dir {
        config.global.run_dir = dir.clone();
    }
    if let Some(level) = &cli.log_level {
        config.global.log_level = level.clone();
    }
    Ok(config)
}

/// The log filter, changeable at run time (`vlog/set`, or `log_level` on reload).
struct LogFilter {
    handle: reload::Handle<EnvFilter, Registry>,
    current: Mutex<String>,
}

impl LogFilter {
    fn get(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the filter; an invalid one is an error and changes nothing.
    fn set(&self, spec: &str) -> Result<(), String> {
        let f =
            EnvFilter::try_new(spec).map_err(|e| format!("invalid log filter '{spec}': {e}"))?;
        self.handle
            .reload(f)
            .map_err(|e| format!("cannot change the log filter: {e}"))?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = spec.to_string();
        tracing::info!("log filter is now '{spec}'");
        Ok(())
    }
}

/// What the main thread waits for.
enum Event {
    Shutdown(&'static str),
    Reload,
}

/// Re-reads the config file into the running switch; the reply of `reload`.
/// The daemon owns the log filter, so a new `log_level` is applied here, not by the
/// switch.
fn reload(switch: &Switch, cli: &Cli, log: &LogFilter) -> Result<String, String> {
    let mut config =
        load_config(cli).map_err(|e| format!("invalid configuration, nothing changed: {e}"))?;
    let mut extra = String::new();
    if config.global.log_level != log.get() {
        log.set(&config.global.log_level)
            .map_err(|e| format!("nothing changed: {e}"))?;
        extra = format!(
            "applied: [global] log_level = {}\n",
            config.global.log_level
        );
    }
    config.global.log_level = switch.config().global.log_level;
    match switch.reload(config) {
        Ok(report) => Ok(format!("{report}{extra}")),
        Err(e) => Err(format!("reload partly failed: {e}")),
    }
}

fn run(config: Config, cli: Cli, log: Arc<LogFilter>) -> anyhow::Result<()> {
    // Before any thread exists, so that all of them but the PMDs stay off the PMD cores
    // (only PMDs of the userspace datapath own a core).
    let userspace = config
        .bridges
        .iter()
        .any(|b| b.datapath == rvswitch::config::DatapathType::Netdev);
    if userspace {
        match rvswitch::pmd::affinity::keep_off_pmd_cores(&config.global.pmd_cores) {
            Ok(cores) => tracing::info!(?cores, "non-PMD threads run on these cores"),
            Err(e) => tracing::warn!("{e}"),
        }
    }
    let run_dir = config.global.run_dir.clone();
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create run directory {}", run_dir.display()))?;
    let socket = run_dir.join(SOCKET_NAME);
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        anyhow::bail!(
            "another rvswitch is serving {} (use another --run-dir)",
            socket.display()
        );
    }
    let (event_tx, event_rx) = mpsc::channel::<Event>();
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install the SIGINT/SIGTERM/SIGHUP handlers")?;
    let signal_tx = event_tx.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let event = match sig {
                    SIGHUP => Event::Reload,
                    SIGINT => Event::Shutdown("SIGINT"),
                    _ => Event::Shutdown("SIGTERM"),
                };
                if signal_tx.send(event).is_err() {
                    return;
                }
            }
        })
        .context("cannot start the signal thread")?;
    let cli = Arc::new(cli);

    let switch = Switch::start(config, true).context("cannot start the switch")?;
    let mut registry = CommandRegistry::new();
    rvswitch::bridge::register_commands(&mut registry, switch.clone());
    let exit_tx = std::sync::Mutex::new(event_tx);
    registry.register("exit", "", 0, 0, move |_| {
        let _ = exit_tx
            .lock()
            .map(|tx| tx.send(Event::Shutdown("exit command")));
        Ok(String::new())
    });
    let (reload_switch, reload_cli, reload_log) = (switch.clone(), cli.clone(), log.clone());
    registry.register("reload", "", 0, 0, move |_| {
        reload(&reload_switch, &reload_cli, &reload_log)
    });
    let set_log = log.clone();
    registry.register("vlog/set", "FILTER", 1, 1, move |a| {
        set_log.set(&a[0])?;
        Ok(format!("log filter is now '{}'\n", a[0]))
    });
    let list_log = log.clone();
    registry.register("vlog/list", "", 0, 0, move |_| {
        Ok(format!("{}\n", list_log.get()))
    });
    let mut server = ControlServer::start(&socket, Arc::new(registry))
        .with_context(|| format!("cannot serve the control socket {}", socket.display()))?;
    tracing::info!(
        "rvswitch {} running; control socket {}",
        rvswitch::VERSION,
        socket.display()
    );

    let why = loop {
        match event_rx.recv() {
            Ok(Event::Reload) => {
                tracing::info!("SIGHUP: reloading {}", cli.config.display());
                // The switch logs what the reload did.
                if let Err(e) = reload(&switch, &cli, &log) {
                    tracing::error!("{e}");
                }
            }
            Ok(Event::Shutdown(why)) => break why,
            Err(_) => break "channel closed",
        }
    };
    tracing::info!("shutting down ({why})");
    server.stop();
    switch.shutdown();
    tracing::info!("stopped");
    Ok(())
}
