//! The build profiles of the root `Cargo.toml`, read from the manifest so
//! that the bench and the packaging reports say what each binary was built
//! with (the manifest is the only place the settings are written).

use std::collections::BTreeMap;

use anyhow::Context;

use crate::project_root;

/// The profile `cargo xtask package` builds staging and prod with.
pub const PRODUCTION: &str = "production";
/// The fast profile: dev deploys (`cargo xtask package --profile release`).
pub const RELEASE: &str = "release";
/// The bench's floor and hello-world baseline, whatever the project's profiles are.
pub const FLOOR: &str = "floor";

/// A profile's settings after `inherits` is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub opt_level: String,
    pub lto: String,
    pub codegen_units: String,
    pub panic: String,
    /// `package."*"`: the opt-level of every dependency, when it differs.
    pub dependencies_opt_level: Option<String>,
    /// Packages with an opt-level of their own.
    pub overridden: Vec<String>,
}

impl Profile {
    /// The folder of `target/` (or `target/<triple>/`) cargo builds it into.
    pub fn dir(&self) -> &str {
        match self.name.as_str() {
            "dev" | "test" => "debug",
            "bench" => "release",
            other => other,
        }
    }

    /// One line: `production` (LTO off, codegen-units 1, opt-level 3, ...).
    pub fn describe(&self) -> String {
        let dependencies = match &self.dependencies_opt_level {
            Some(level) if *level != self.opt_level => format!("dependencies at opt-level {level}"),
            _ => "the same for dependencies".to_owned(),
        };
        let overridden = if self.overridden.is_empty() {
            String::new()
        } else {
            format!(" except {} of them", self.overridden.len())
        };
        format!(
            "`{}`: LTO {}, codegen-units {}, opt-level {} ({dependencies}{overridden}), panic={}",
            self.name, self.lto, self.codegen_units, self.opt_level, self.panic
        )
    }
}

/// Reads `name` from the root manifest.
pub fn load(name: &str) -> anyhow::Result<Profile> {
    let path = project_root().join("Cargo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text, name)
}

/// Cargo's built-in defaults for dev and release, then the manifest's settings
/// from the root of the `inherits` chain down to `name`.
pub fn parse(manifest: &str, name: &str) -> anyhow::Result<Profile> {
    let manifest: toml::Table = toml::from_str(manifest).context("the root Cargo.toml is not TOML")?;
    let empty = toml::Table::new();
    let profiles = manifest.get("profile").and_then(toml::Value::as_table).unwrap_or(&empty);
    let mut chain = vec![name.to_owned()];
    loop {
        let current = chain.last().expect("the chain starts with the profile");
        if matches!(current.as_str(), "dev" | "release") {
            break;
        }
        let inherits = profiles
            .get(current)
            .and_then(|p| p.get("inherits"))
            .and_then(toml::Value::as_str)
            .with_context(|| format!("profile `{current}` is not in Cargo.toml or inherits nothing"))?;
        anyhow::ensure!(!chain.iter().any(|c| c == inherits), "profile `{current}` inherits in a cycle");
        chain.push(inherits.to_owned());
    }
    let base = chain.last().expect("the chain ends at dev or release");
    let mut settings: BTreeMap<&str, String> = if base == "dev" {
        BTreeMap::from([("opt-level", "0".into()), ("lto", "off".into()), ("codegen-units", "256".into())])
    } else {
        BTreeMap::from([("opt-level", "3".into()), ("lto", "off".into()), ("codegen-units", "16".into())])
    };
    settings.insert("panic", "unwind".into());
    let mut dependencies = None;
    let mut overridden = BTreeMap::new();
    for profile in chain.iter().rev().filter_map(|p| profiles.get(p)) {
        for key in ["opt-level", "lto", "codegen-units", "panic"] {
            if let Some(value) = profile.get(key) {
                settings.insert(key, setting(value));
            }
        }
        for (package, table) in profile.get("package").and_then(toml::Value::as_table).into_iter().flatten() {
            let Some(level) = table.get("opt-level").map(setting) else { continue };
            if package == "*" {
                dependencies = Some(level);
            } else {
                overridden.insert(package.clone(), level);
            }
        }
    }
    // A package set to what every dependency gets is no exception.
    overridden.retain(|_, level| dependencies.as_ref() != Some(level));
    Ok(Profile {
        name: name.to_owned(),
        opt_level: settings["opt-level"].clone(),
        lto: settings["lto"].clone(),
        codegen_units: settings["codegen-units"].clone(),
        panic: settings["panic"].clone(),
        dependencies_opt_level: dependencies,
        overridden: overridden.into_keys().collect(),
    })
}

/// A setting as written: `"thin"` → thin, `true` → fat (cargo's meaning of
/// `lto = true`), `false` → off.
fn setting(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) if s == "s" || s == "z" => format!("\"{s}\""),
        toml::Value::String(s) => s.clone(),
        toml::Value::Boolean(true) => "fat".into(),
        toml::Value::Boolean(false) => "off".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[profile.release]
lto = "off"
codegen-units = 16
[profile.release.package."*"]
opt-level = "s"
[profile.release.package.argon2]
opt-level = 3

[profile.production]
inherits = "release"
lto = "thin"
codegen-units = 1
[profile.production.package."*"]
opt-level = 3

[profile.floor]
inherits = "production"
lto = true
panic = "abort"
"#;

    #[test]
    fn follows_inherits_and_package_overrides() {
        let release = parse(MANIFEST, "release").unwrap();
        assert_eq!((release.lto.as_str(), release.codegen_units.as_str()), ("off", "16"));
        assert_eq!(release.dependencies_opt_level.as_deref(), Some("\"s\""));
        assert_eq!(release.overridden, ["argon2"]);
        assert_eq!(release.dir(), "release");

        let production = parse(MANIFEST, "production").unwrap();
        assert_eq!((production.lto.as_str(), production.codegen_units.as_str()), ("thin", "1"));
        assert_eq!(production.dependencies_opt_level.as_deref(), Some("3"));
        assert!(production.overridden.is_empty(), "argon2 at 3 is what every dependency gets");
        assert_eq!(production.panic, "unwind");
        assert_eq!(
            production.describe(),
            "`production`: LTO thin, codegen-units 1, opt-level 3 (the same for dependencies), panic=unwind"
        );

        let floor = parse(MANIFEST, "floor").unwrap();
        assert_eq!((floor.lto.as_str(), floor.codegen_units.as_str(), floor.panic.as_str()), ("fat", "1", "abort"));
        assert_eq!(floor.dir(), "floor");
        assert_eq!(parse(MANIFEST, "dev").unwrap().dir(), "debug");
    }

    #[test]
    fn refuses_an_unknown_profile() {
        assert!(parse(MANIFEST, "nightly").unwrap_err().to_string().contains("`nightly`"));
    }

    #[test]
    fn the_manifest_has_the_profiles_the_commands_build_with() {
        for name in [PRODUCTION, RELEASE, FLOOR] {
            load(name).unwrap();
        }
        let production = load(PRODUCTION).unwrap();
        // The batch processor catches a panicking record's unwind (catch_unwind).
        assert_eq!(production.panic, "unwind", "production must unwind: the batch processor fails one record only");
    }
}
