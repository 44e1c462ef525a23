//! The command action: a program run with `{field}` arguments, without a shell, with the
//! fields also in its environment (`F2B_JAIL`, `F2B_ADDRESS`, …), a timeout, and its output
//! logged to the journal. A non-zero exit or a timeout is retried.

use std::process::Stdio;

use tokio::process::Command as Process;
use tracing::{info, warn};

use super::ActionError;
use crate::config::{ActionConfig, ActionKind};
use crate::outbox::{Delivery, DeliveryError, Escape, Notice, Sink, Template};

/// Output kept from each stream, at most (the journal line stays readable).
const MAX_OUTPUT: usize = 4096;
/// The PATH the programs see (their environment is otherwise only the fields).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct Command {
    name: String,
    argv: Vec<Template>,
    timeout: std::time::Duration,
}

impl Command {
    pub fn new(cfg: &ActionConfig) -> Result<Command, ActionError> {
        let ActionKind::Command { argv } = &cfg.kind else {
            return Err(ActionError::Kind(cfg.name.clone()));
        };
        Ok(Command {
            name: cfg.name.clone(),
            argv: argv.clone(),
            timeout: cfg.timeout,
        })
    }
}

/// The environment of a run: `F2B_FIELD=value` for each field.
pub fn environment(n: &Notice) -> Vec<(String, String)> {
    Notice::FIELDS
        .iter()
        .filter_map(|f| Some((format!("F2B_{}", f.to_ascii_uppercase()), n.field(f)?)))
        .collect()
}

fn cut(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_OUTPUT)]);
    text.trim_end().to_string()
}

impl Sink for Command {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a self, n: &'a Notice) -> Delivery<'a> {
        Box::pin(async move {
            let argv: Vec<String> = (self.argv.iter())
                .map(|t| t.render(n, Escape::None, &[]))
                .collect();
            let mut p = Process::new(&argv[0]);
            p.args(&argv[1..])
                .env_clear()
                .env("PATH", PATH)
                .envs(environment(n))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let child = p
                .spawn()
                .map_err(|e| DeliveryError::Transient(format!("cannot run {}: {e}", argv[0])))?;
            let name = &self.name;
            let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
                Ok(Ok(out)) => out,
                Ok(Err(e)) => return Err(DeliveryError::Transient(format!("{}: {e}", argv[0]))),
                // The child is killed when its future is dropped (kill_on_drop).
                Err(_) => {
                    return Err(DeliveryError::Transient(format!(
                        "{} did not finish within {:?} and was killed",
                        argv[0], self.timeout
                    )))
                }
            };
            let (stdout, stderr) = (cut(&out.stdout), cut(&out.stderr));
            if out.status.success() {
                if !stdout.is_empty() || !stderr.is_empty() {
                    info!(F2B_ACTION = %name, F2B_JAIL = %n.jail, F2B_ADDRESS = %n.address,
                          stdout = %stdout, stderr = %stderr,
                          "action {name}: {} said: {}", argv[0], if stderr.is_empty() { &stdout } else { &stderr });
                }
                return Ok(());
            }
            warn!(F2B_ACTION = %name, F2B_JAIL = %n.jail, F2B_ADDRESS = %n.address,
                  stdout = %stdout, stderr = %stderr, status = %out.status,
                  "action {name}: {} failed ({})", argv[0], out.status);
            let last = stderr.lines().last().unwrap_or_default();
            Err(DeliveryError::Transient(format!(
                "{} {}: {last}",
                argv[0], out.status
            )))
        })
    }
}
