//! Named commands with declared argument counts and usage strings.

use std::collections::BTreeMap;

/// What a command handler returns: its output text, or an error text for the client.
pub type CommandResult = Result<String, String>;

type Handler = Box<dyn Fn(&[String]) -> CommandResult + Send + Sync>;

struct Command {
    usage: String,
    min_args: usize,
    max_args: usize,
    handler: Handler,
}

/// The set of commands the control socket serves.
///
/// Commands register their argument bounds, so the registry rejects a wrong count with the
/// usage string before a handler runs (as unixctl does).
pub struct CommandRegistry {
    commands: BTreeMap<String, Command>,
}

impl Default for CommandRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandRegistry {
    /// A registry holding only `list-commands` and `version` (answered by `dispatch`).
    pub fn new() -> Self {
        CommandRegistry {
            commands: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a command. `usage` describes the arguments, e.g. "BR FLOW".
    pub fn register<F>(
        &mut self,
        name: &str,
        usage: &str,
        min_args: usize,
        max_args: usize,
        handler: F,
    ) where
        F: Fn(&[String]) -> CommandResult + Send + Sync + 'static,
    {
        self.commands.insert(
            name.to_string(),
            Command {
                usage: usage.to_string(),
                min_args,
                max_args,
                handler: Box::new(handler),
            },
        );
    }

    /// Names of all commands, including the built-in ones.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.commands.keys().cloned().collect();
        for b in ["list-commands", "version"] {
            if !self.commands.contains_key(b) {
                names.push(b.to_string());
            }
        }
        names.sort();
        names
    }

    /// Runs `method` with `args`, checking that the command exists and the argument count.
    pub fn dispatch(&self, method: &str, args: &[String]) -> CommandResult {
        let Some(cmd) = self.commands.get(method) else {
            return match method {
                "list-commands" => Ok(self.list_commands()),
                "version" => Ok(format!("rvswitch {}\n", crate::VERSION)),
                _ => Err(format!(
                    "\"{method}\" is not a valid command (use list-commands to see the commands)"
                )),
            };
        };
        if args.len() < cmd.min_args {
            return Err(format!(
                "\"{method}\" command requires at least {} arguments\nusage: {method} {}",
                cmd.min_args, cmd.usage
            ));
        }
        if args.len() > cmd.max_args {
            return Err(format!(
                "\"{method}\" command takes at most {} arguments\nusage: {method} {}",
                cmd.max_args, cmd.usage
            ));
        }
        (cmd.handler)(args)
    }

    fn list_commands(&self) -> String {
        let mut out = String::from("The available commands are:\n");
        for name in self.names() {
            let usage = self.commands.get(&name).map_or("", |c| c.usage.as_str());
            out.push_str(&format!("  {name:<24}{usage}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> CommandRegistry {
        let mut r = CommandRegistry::new();
        r.register("echo", "ARG [ARG]", 1, 2, |a| Ok(a.join(" ")));
        r.register("fail", "", 0, 0, |_| Err("it failed".into()));
        r
    }

    #[test]
    fn dispatch_checks_arity_and_names() {
        let r = registry();
        assert_eq!(r.dispatch("echo", &["a".into()]), Ok("a".into()));
        assert_eq!(
            r.dispatch("echo", &["a".into(), "b".into()]),
            Ok("a b".into())
        );
        let e = r.dispatch("echo", &[]).unwrap_err();
        assert!(
            e.contains("at least 1") && e.contains("usage: echo ARG [ARG]"),
            "{e}"
        );
        let e = r
            .dispatch("echo", &["a".into(), "b".into(), "c".into()])
            .unwrap_err();
        assert!(e.contains("at most 2"), "{e}");
        assert_eq!(r.dispatch("fail", &[]), Err("it failed".into()));
        assert!(r
            .dispatch("nope", &[])
            .unwrap_err()
            .contains("\"nope\" is not a valid command"));
    }

    #[test]
    fn builtins() {
        let r = registry();
        let list = r.dispatch("list-commands", &[]).unwrap();
        for name in ["echo", "fail", "list-commands", "version"] {
            assert!(list.contains(name), "{list}");
        }
        assert!(r.dispatch("version", &[]).unwrap().contains(crate::VERSION));
    }
}
