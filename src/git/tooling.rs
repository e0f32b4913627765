//! Continuous integration and linter configuration in a graded tree: what the checklist checks
//! `ci_config` and `linters` read. Recognised by path and, for the shared manifests
//! (pyproject.toml, setup.cfg, package.json), by the tool's own section or dependency.

/// The CI service a path configures, if any.
pub fn ci_service(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    let yaml = |p: &str| p.ends_with(".yml") || p.ends_with(".yaml");
    match lower.as_str() {
        p if p.starts_with(".github/workflows/") && yaml(p) => Some("GitHub Actions"),
        ".gitlab-ci.yml" | ".gitlab-ci.yaml" => Some("GitLab CI"),
        ".circleci/config.yml" | ".circleci/config.yaml" => Some("CircleCI"),
        ".travis.yml" => Some("Travis CI"),
        "azure-pipelines.yml" | "azure-pipelines.yaml" => Some("Azure Pipelines"),
        "bitbucket-pipelines.yml" => Some("Bitbucket Pipelines"),
        "jenkinsfile" => Some("Jenkins"),
        ".drone.yml" => Some("Drone"),
        p if p.starts_with(".buildkite/") && yaml(p) => Some("Buildkite"),
        p if p.starts_with(".woodpecker/") && yaml(p) || p == ".woodpecker.yml" => Some("Woodpecker"),
        _ => None,
    }
}

/// Files whose content [`linters`] needs (the shared manifests); other paths are decided by name.
pub fn needs_content(path: &str) -> bool {
    matches!(
        path.rsplit('/').next().unwrap_or(path),
        "pyproject.toml" | "setup.cfg" | "tox.ini" | "package.json"
    )
}

/// The linters and formatters a file configures (`content` is read for [`needs_content`] files).
pub fn linters(path: &str, content: Option<&str>) -> Vec<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let by_name: Option<&'static str> = match name.as_str() {
        ".pre-commit-config.yaml" | ".pre-commit-config.yml" => Some("pre-commit"),
        ".flake8" => Some("flake8"),
        ".pylintrc" | "pylintrc" => Some("pylint"),
        "ruff.toml" | ".ruff.toml" => Some("ruff"),
        "mypy.ini" | ".mypy.ini" => Some("mypy"),
        "tslint.json" => Some("tslint"),
        "biome.json" | "biome.jsonc" => Some("biome"),
        ".golangci.yml" | ".golangci.yaml" | ".golangci.toml" | ".golangci.json" => Some("golangci-lint"),
        "rustfmt.toml" | ".rustfmt.toml" => Some("rustfmt"),
        "clippy.toml" | ".clippy.toml" => Some("clippy"),
        ".rubocop.yml" => Some("rubocop"),
        ".swiftlint.yml" => Some("swiftlint"),
        "checkstyle.xml" => Some("checkstyle"),
        n if n.starts_with(".eslintrc") || n.starts_with("eslint.config.") => Some("eslint"),
        n if n.starts_with(".prettierrc") || n.starts_with("prettier.config.") => Some("prettier"),
        n if n.starts_with(".stylelintrc") => Some("stylelint"),
        _ => None,
    };
    if let Some(tool) = by_name {
        return vec![tool];
    }
    let Some(text) = content.filter(|_| needs_content(path)) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    match name.as_str() {
        "pyproject.toml" => {
            for (section, tool) in [
                ("[tool.ruff", "ruff"),
                ("[tool.black", "black"),
                ("[tool.isort", "isort"),
                ("[tool.flake8", "flake8"),
                ("[tool.pylint", "pylint"),
                ("[tool.mypy", "mypy"),
                ("[tool.pyright", "pyright"),
            ] {
                if text.lines().any(|l| l.trim_start().starts_with(section)) {
                    found.push(tool);
                }
            }
        }
        "setup.cfg" | "tox.ini" => {
            for (section, tool) in [
                ("[flake8]", "flake8"),
                ("[pylint", "pylint"),
                ("[mypy", "mypy"),
                ("[isort]", "isort"),
            ] {
                if text.lines().any(|l| l.trim_start().starts_with(section)) {
                    found.push(tool);
                }
            }
        }
        "package.json" => {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
                return Vec::new();
            };
            let declared = |dep: &str| {
                ["dependencies", "devDependencies"]
                    .iter()
                    .any(|k| json.get(k).and_then(|d| d.get(dep)).is_some())
            };
            if json.get("eslintConfig").is_some() || declared("eslint") {
                found.push("eslint");
            }
            if json.get("prettier").is_some() || declared("prettier") {
                found.push("prettier");
            }
            if declared("@biomejs/biome") {
                found.push("biome");
            }
        }
        _ => {}
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_services_are_recognised_by_their_paths() {
        assert_eq!(ci_service(".github/workflows/test.yml"), Some("GitHub Actions"));
        assert_eq!(ci_service(".gitlab-ci.yml"), Some("GitLab CI"));
        assert_eq!(ci_service("Jenkinsfile"), Some("Jenkins"));
        assert_eq!(ci_service(".github/dependabot.yml"), None);
        assert_eq!(ci_service("docs/workflows/test.yml"), None);
        assert_eq!(ci_service(".github/workflows/README.md"), None);
    }

    #[test]
    fn linters_by_name_and_by_section_of_a_shared_manifest() {
        assert_eq!(linters(".pre-commit-config.yaml", None), vec!["pre-commit"]);
        assert_eq!(linters("web/.eslintrc.cjs", None), vec!["eslint"]);
        assert_eq!(linters("rustfmt.toml", None), vec!["rustfmt"]);
        let py = "[project]\nname = \"x\"\n\n[tool.ruff]\nline-length = 100\n[tool.mypy]\nstrict = true\n";
        assert_eq!(linters("pyproject.toml", Some(py)), vec!["ruff", "mypy"]);
        assert!(linters("pyproject.toml", Some("[project]\nname = \"ruff-user\"\n")).is_empty());
        let pkg = r#"{"devDependencies": {"eslint": "^9", "jest": "^29"}}"#;
        assert_eq!(linters("package.json", Some(pkg)), vec!["eslint"]);
        assert!(linters("package.json", Some("not json")).is_empty());
        assert!(linters("src/main.py", Some("[tool.ruff]")).is_empty());
    }
}
