//! Credentials and settings from the AWS shared files (`~/.aws/credentials` and
//! `~/.aws/config`), for the profile `AWS_PROFILE` names (else `default`).
//!
//! Environment variables win over the files, as in the AWS tools. Static keys, a session
//! token, the region and `endpoint_url` are read; profiles that obtain credentials some
//! other way (SSO, `credential_process`, an assumed role) are reported as not supported
//! yet instead of being ignored.

use std::collections::HashMap;
use std::path::PathBuf;

/// What a profile sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Profile {
    /// The profile's name.
    pub name: String,
    /// `aws_access_key_id`.
    pub access_key_id: Option<String>,
    /// `aws_secret_access_key`.
    pub secret_access_key: Option<String>,
    /// `aws_session_token`.
    pub session_token: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `endpoint_url`.
    pub endpoint_url: Option<String>,
    /// A key naming a way of obtaining credentials that is not read here.
    pub unsupported_source: Option<String>,
}

/// Keys that obtain credentials in ways this reader does not follow.
const OTHER_SOURCES: &[&str] = &[
    "credential_process",
    "sso_session",
    "sso_start_url",
    "role_arn",
    "web_identity_token_file",
];

/// The profile selected by `env` (a lookup of environment variables), read from the
/// shared files; `None` if neither file mentions it.
pub(crate) fn load(env: &dyn Fn(&str) -> Option<String>) -> Option<Profile> {
    let name = env("AWS_PROFILE")
        .or_else(|| env("AWS_DEFAULT_PROFILE"))
        .unwrap_or_else(|| "default".to_string());
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
            .and_then(|path| std::fs::read_to_string(path).ok())
    };
    let credentials = file("AWS_SHARED_CREDENTIALS_FILE", "credentials").unwrap_or_default();
    let config = file("AWS_CONFIG_FILE", "config").unwrap_or_default();
    let config_section = if name == "default" {
        "default".to_string()
    } else {
        format!("profile {name}")
    };
    let from_credentials = section(&credentials, &name);
    let from_config = section(&config, &config_section);
    if from_credentials.is_none() && from_config.is_none() {
        return None;
    }
    let (credentials, config) = (
        from_credentials.unwrap_or_default(),
        from_config.unwrap_or_default(),
    );
    let get = |key: &str| {
        credentials
            .get(key)
            .or_else(|| config.get(key))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    Some(Profile {
        access_key_id: get("aws_access_key_id"),
        secret_access_key: get("aws_secret_access_key"),
        session_token: get("aws_session_token"),
        region: get("region"),
        endpoint_url: get("endpoint_url"),
        unsupported_source: OTHER_SOURCES
            .iter()
            .find(|key| get(key).is_some())
            .map(|key| key.to_string()),
        name,
    })
}

/// The `key = value` pairs of section `[wanted]` of an INI text (comments start with
/// `#` or `;`; keys are case-insensitive; indented lines belong to nested blocks and are
/// skipped). `None` if the section is absent.
fn section(text: &str, wanted: &str) -> Option<HashMap<String, String>> {
    let mut found = false;
    let mut pairs = HashMap::new();
    let mut in_wanted = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            in_wanted = name.trim() == wanted;
            found |= in_wanted;
            continue;
        }
        if !in_wanted || line.starts_with(char::is_whitespace) {
            continue;
        }
        if let Some((key, value)) = trimmed.split_once('=') {
            pairs.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    found.then_some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(dir: &std::path::Path, profile: Option<&str>) -> impl Fn(&str) -> Option<String> {
        let dir = dir.to_path_buf();
        let profile = profile.map(str::to_string);
        move |key| match key {
            "HOME" => Some(dir.display().to_string()),
            "AWS_PROFILE" => profile.clone(),
            _ => None,
        }
    }

    fn write(dir: &std::path::Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir.join(".aws")).unwrap();
        std::fs::write(dir.join(".aws").join(name), text).unwrap();
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("traceql-aws-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_keys_from_credentials_and_region_from_config() {
        let dir = temp_dir("keys");
        write(
            &dir,
            "credentials",
            "# comment\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key=secret\n\n\
             [dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = devsecret\naws_session_token = tok\n",
        );
        write(
            &dir,
            "config",
            "[default]\nregion = eu-west-1\n[profile dev]\nregion = us-west-2\nendpoint_url = http://127.0.0.1:9000\ns3 =\n  addressing_style = path\n",
        );
        let default = load(&env_with(&dir, None)).unwrap();
        assert_eq!(default.name, "default");
        assert_eq!(default.access_key_id.as_deref(), Some("AKIADEFAULT"));
        assert_eq!(default.secret_access_key.as_deref(), Some("secret"));
        assert_eq!(default.region.as_deref(), Some("eu-west-1"));
        assert_eq!(default.session_token, None);
        let dev = load(&env_with(&dir, Some("dev"))).unwrap();
        assert_eq!(dev.access_key_id.as_deref(), Some("AKIADEV"));
        assert_eq!(dev.session_token.as_deref(), Some("tok"));
        assert_eq!(dev.region.as_deref(), Some("us-west-2"));
        assert_eq!(dev.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(!dev.endpoint_url.iter().any(|v| v.contains("addressing")));
        assert_eq!(dev.unsupported_source, None);
        assert_eq!(load(&env_with(&dir, Some("absent"))), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn notes_profiles_that_get_credentials_elsewhere() {
        let dir = temp_dir("sso");
        write(
            &dir,
            "config",
            "[profile work]\nsso_session = corp\nregion = eu-central-1\n",
        );
        let work = load(&env_with(&dir, Some("work"))).unwrap();
        assert_eq!(work.unsupported_source.as_deref(), Some("sso_session"));
        assert_eq!(work.access_key_id, None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_files_means_no_profile() {
        let dir = temp_dir("none");
        assert_eq!(load(&env_with(&dir, None)), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
