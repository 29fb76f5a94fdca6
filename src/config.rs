//! The config file: defaults for command-line flags, `$FRONTIER_CONFIG` or
//! `$XDG_CONFIG_HOME/frontier/config.toml` (`~/.config/frontier/config.toml`). A table per
//! command, plus `[all]` for every command that has the flag; a flag given on the command
//! line wins over the file.
//!
//! ```toml
//! [all]
//! threads = 2
//! [sweep]
//! serve-ctx = 8192
//! quants = ["Q4_K_M", "Q8_0"]
//! ```

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use frontier_core::bad_input;

/// Where the config file is looked for.
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FRONTIER_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("frontier").join("config.toml"))
}

/// The command line with the config file's defaults inserted after the subcommand's name
/// (those the command line does not set itself). No file: the command line as it is.
pub fn apply(args: Vec<OsString>, cli: &clap::Command) -> Result<Vec<OsString>> {
    let Some(path) = path().filter(|p| p.is_file()) else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    insert_defaults(args, cli, &table, &path.display().to_string())
}

fn insert_defaults(
    args: Vec<OsString>,
    cli: &clap::Command,
    table: &toml::Table,
    origin: &str,
) -> Result<Vec<OsString>> {
    // The subcommand: the first argument that is not a global flag.
    let Some(at) = args
        .iter()
        .skip(1)
        .position(|a| !a.to_string_lossy().starts_with('-'))
        .map(|i| i + 1)
    else {
        return Ok(args);
    };
    let name = args[at].to_string_lossy().into_owned();
    let Some(sub) = cli.find_subcommand(&name) else {
        return Ok(args);
    };
    for key in table.keys() {
        if key != "all" && cli.find_subcommand(key).is_none() {
            return Err(bad_input(format!(
                "{origin}: [{key}] is not a frontier command"
            )));
        }
    }
    let given: Vec<String> = args[at + 1..]
        .iter()
        .map(|a| {
            a.to_string_lossy()
                .split('=')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let mut inserted = Vec::new();
    for (section, strict) in [("all", false), (name.as_str(), true)] {
        let Some(toml::Value::Table(entries)) = table.get(section) else {
            continue;
        };
        for (key, value) in entries {
            let Some(arg) = sub
                .get_arguments()
                .find(|a| a.get_long() == Some(key.as_str()))
            else {
                if strict {
                    return Err(bad_input(format!(
                        "{origin}: `frontier {name}` has no --{key}"
                    )));
                }
                continue;
            };
            // The command line sets it: the file's value would add to it or clash.
            let mut spellings = vec![format!("--{key}")];
            spellings.extend(arg.get_short().map(|c| format!("-{c}")));
            spellings.extend(
                arg.get_visible_aliases()
                    .into_iter()
                    .flatten()
                    .map(|a| format!("--{a}")),
            );
            if given.iter().any(|g| spellings.contains(g)) {
                continue;
            }
            match value {
                toml::Value::Boolean(true) => inserted.push(format!("--{key}")),
                toml::Value::Boolean(false) => {}
                toml::Value::Array(items) => {
                    let parts: Vec<String> = items.iter().map(scalar).collect::<Result<_>>()?;
                    inserted.push(format!("--{key}={}", parts.join(",")));
                }
                other => inserted.push(format!("--{key}={}", scalar(other)?)),
            }
        }
    }
    let mut out = args;
    for (i, a) in inserted.into_iter().enumerate() {
        out.insert(at + 1 + i, a.into());
    }
    Ok(out)
}

fn scalar(v: &toml::Value) -> Result<String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        other => {
            return Err(bad_input(format!(
                "config: {other} is not a flag value (a string, number, boolean or list)"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn run(line: &str, file: &str) -> Result<Vec<String>> {
        let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        let table: toml::Table = toml::from_str(file).unwrap();
        Ok(
            insert_defaults(args, &crate::cli::Cli::command(), &table, "config.toml")?
                .into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        )
    }

    #[test]
    fn defaults_go_after_the_command_and_the_command_line_wins() {
        let file = "[all]\nthreads = 2\n[sweep]\nserve-ctx = 8192\nquants = [\"Q4_K_M\", \"Q8_0\"]\nno-batch = true\n";
        assert_eq!(
            run("frontier -q sweep --models m", file).unwrap(),
            [
                "frontier",
                "-q",
                "sweep",
                "--threads=2",
                "--no-batch",
                "--quants=Q4_K_M,Q8_0",
                "--serve-ctx=8192",
                "--models",
                "m"
            ]
        );
        // Given on the command line (here as -t): the file's value is left out.
        let line = run("frontier sweep -t 1 --quants F16 --models m", file).unwrap();
        assert!(!line
            .iter()
            .any(|a| a.starts_with("--threads") || a.starts_with("--quants=")));
        // [all] skips commands without the flag.
        assert_eq!(run("frontier list", file).unwrap(), ["frontier", "list"]);
    }

    #[test]
    fn unknown_commands_and_flags_are_errors() {
        assert!(run("frontier sweep", "[swep]\nthreads = 1\n").is_err());
        let e = run("frontier sweep", "[sweep]\nthreadz = 1\n").unwrap_err();
        assert!(e.to_string().contains("has no --threadz"), "{e}");
    }
}
