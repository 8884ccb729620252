//! Where the client finds its server and credential: flags, then `TIDINGSCLIENT_*`
//! environment variables (clap reads those), then the client config file, so a key
//! need never be on the command line. The prefix is not the server's `TIDINGS_`:
//! every `TIDINGS_*` variable is a server setting, and an unknown one stops the server.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Target;

/// The server when neither flag, environment nor file names one.
const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// What the command line (flags or their environment variables) gave.
pub struct Given {
    pub server: Option<String>,
    pub api_key: Option<String>,
    pub token: Option<String>,
    /// An explicit config file, which must then exist.
    pub config: Option<PathBuf>,
}

/// The client config file: any of the three, each overridden by its flag.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    server: Option<String>,
    api_key: Option<String>,
    token: Option<String>,
}

impl Given {
    /// The target, what the command line left out taken from the config file.
    pub fn target(self) -> Result<Target, String> {
        let file = match (&self.config, default_path()) {
            (Some(path), _) => read(path)?,
            (None, Some(path)) if path.exists() => read(&path)?,
            (None, _) => FileSettings::default(),
        };
        Ok(Target {
            server: (self.server.or(file.server)).unwrap_or_else(|| DEFAULT_SERVER.into()),
            api_key: self.api_key.or(file.api_key),
            token: self.token.or(file.token),
        })
    }
}

/// `$XDG_CONFIG_HOME/tidings/client.toml`, else `$HOME/.config/tidings/client.toml`.
fn default_path() -> Option<PathBuf> {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = non_empty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(base.join("tidings").join("client.toml"))
}

fn read(path: &Path) -> Result<FileSettings, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("client config {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let first = e.to_string();
        let first = first.lines().last().unwrap_or_default().trim().to_string();
        format!("client config {}: {first}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_fills_only_what_the_command_line_left_out() {
        let dir = std::env::temp_dir().join(format!("tidings-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("client.toml");
        std::fs::write(&path, "server = \"http://h:1\"\napi_key = \"noti_file\"\n").unwrap();
        let target = Given {
            server: None,
            api_key: Some("noti_flag".into()),
            token: None,
            config: Some(path.clone()),
        }
        .target()
        .unwrap();
        assert_eq!(target.server, "http://h:1");
        assert_eq!(target.api_key.as_deref(), Some("noti_flag"));
        std::fs::write(&path, "url = \"x\"\n").unwrap();
        let given = || Given {
            server: None,
            api_key: None,
            token: None,
            config: Some(path.clone()),
        };
        let err = given().target().err().unwrap();
        assert!(err.contains("unknown field"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        let err = given().target().err().unwrap();
        assert!(err.starts_with("client config"), "{err}");
    }
}
