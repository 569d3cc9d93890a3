//! The delivery pipeline's conventions (`.github/workflows/`), checked by
//! the tests below: the job graph is the one README.md's Deploying section
//! documents, every action is pinned by a full commit, every job states its
//! permissions and only deploy jobs may ask for an OIDC token.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde_yaml::Value;

/// Job name -> the jobs it needs, sorted.
pub type JobGraph = BTreeMap<String, Vec<String>>;

/// The `needs` edges of a workflow.
pub fn job_graph(workflow: &Value) -> anyhow::Result<JobGraph> {
    let jobs = workflow["jobs"].as_mapping().context("a workflow has jobs")?;
    let mut graph = JobGraph::new();
    for (name, job) in jobs {
        let name = name.as_str().context("a job name is a string")?.to_owned();
        let mut needs: Vec<String> = match &job["needs"] {
            Value::Null => Vec::new(),
            Value::String(one) => vec![one.clone()],
            Value::Sequence(many) => many.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
            other => bail!("job {name}: needs is {other:?}"),
        };
        needs.sort();
        graph.insert(name, needs);
    }
    Ok(graph)
}

/// The table `| job | needs |` of README.md's `## Deploying` section, where
/// each job and need is written in backquotes and "none" means no need.
pub fn documented_graph(readme: &str) -> anyhow::Result<JobGraph> {
    let section = readme.split("\n## Deploying").nth(1).context("README.md has a Deploying section")?;
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut graph = JobGraph::new();
    let mut in_table = false;
    for line in section.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() >= 2 && cells[0] == "job" && cells[1] == "needs" {
            in_table = true;
            continue;
        }
        if !in_table || cells[0].starts_with("---") {
            continue;
        }
        if !line.trim().starts_with('|') {
            break;
        }
        let ticked = |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(str::to_owned).collect() };
        let job = ticked(cells[0]).into_iter().next().context("a job cell names a job in backquotes")?;
        let mut needs = ticked(cells[1]);
        needs.sort();
        graph.insert(job, needs);
    }
    if graph.is_empty() {
        bail!("README.md's Deploying section has no `| job | needs |` table");
    }
    Ok(graph)
}

/// Every workflow under `.github/workflows`, parsed, by file name.
pub fn workflows(root: &Path) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(root.join(".github/workflows")).context("reading .github/workflows")? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            let text = std::fs::read_to_string(&path)?;
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            found.insert(name, serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?);
        }
    }
    Ok(found)
}

/// Problems with the `uses:` of every step: each must be `owner/repo@<40 hex>`
/// (a local `./` action aside).
pub fn unpinned_actions(workflow: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, job) in workflow["jobs"].as_mapping().into_iter().flatten() {
        let name = name.as_str().unwrap_or("?");
        let uses_of_job = job["uses"].as_str().into_iter();
        let uses_of_steps = job["steps"].as_sequence().into_iter().flatten().filter_map(|s| s["uses"].as_str());
        for uses in uses_of_job.chain(uses_of_steps) {
            if uses.starts_with("./") {
                continue;
            }
            let pinned = uses
                .split_once('@')
                .is_some_and(|(_, rev)| rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()));
            if !pinned {
                problems.push(format!("job {name}: {uses} is not pinned to a full commit"));
            }
        }
    }
    problems
}

/// Problems with permissions: every job states its own; only a job that
/// deploys (has an `environment`) may have `id-token: write`; none writes
/// the repository's contents.
pub fn permission_problems(workflow: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, job) in workflow["jobs"].as_mapping().into_iter().flatten() {
        let name = name.as_str().unwrap_or("?");
        let Some(permissions) = job["permissions"].as_mapping() else {
            problems.push(format!("job {name} states no permissions"));
            continue;
        };
        let level = |scope: &str| permissions.get(scope).and_then(Value::as_str).unwrap_or("none").to_owned();
        if level("id-token") == "write" && job["environment"].is_null() {
            problems.push(format!("job {name} asks for an OIDC token but deploys to no environment"));
        }
        if level("contents") == "write" {
            problems.push(format!("job {name} may write the repository"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::{documented_graph, job_graph, permission_problems, unpinned_actions, workflows};
    use crate::project_root;

    #[test]
    fn the_pipeline_runs_the_job_graph_the_readme_documents() {
        let root = project_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let documented = documented_graph(&readme).unwrap();
        let all = workflows(&root).unwrap();
        let pipeline = all.get("pipeline.yml").expect(".github/workflows/pipeline.yml exists");
        assert_eq!(job_graph(pipeline).unwrap(), documented, "README.md's Deploying table vs pipeline.yml's needs");
        // Fail fast: everything depends, directly or not, on the check job.
        for (job, needs) in &documented {
            assert!(job == "check" || !needs.is_empty(), "job {job} does not wait for check");
        }
    }

    #[test]
    fn every_action_is_pinned_and_every_job_states_least_privilege() {
        let all = workflows(&project_root()).unwrap();
        assert!(!all.is_empty());
        let problems: Vec<String> = all
            .iter()
            .flat_map(|(file, workflow)| {
                unpinned_actions(workflow)
                    .into_iter()
                    .chain(permission_problems(workflow))
                    .map(move |problem| format!("{file}: {problem}"))
            })
            .collect();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn a_tag_or_branch_reference_a_missing_permissions_block_and_a_stray_token_are_caught() {
        let workflow: serde_yaml::Value = serde_yaml::from_str(
            "jobs:\n  build:\n    steps:\n      - uses: actions/checkout@v4\n      - uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae\n  \
             leak:\n    permissions: {contents: write, id-token: write}\n    steps: []\n",
        )
        .unwrap();
        assert_eq!(unpinned_actions(&workflow), ["job build: actions/checkout@v4 is not pinned to a full commit"]);
        assert_eq!(
            permission_problems(&workflow),
            [
                "job build states no permissions",
                "job leak asks for an OIDC token but deploys to no environment",
                "job leak may write the repository",
            ]
        );
    }

    #[test]
    fn the_documented_table_is_read_from_the_deploying_section_only() {
        let readme = "## Testing\n| job | needs |\n|---|---|\n| `x` | `y` |\n\n## Deploying\n\ntext\n\n\
                      | job | needs |\n|---|---|\n| `check` | none |\n| `test` | `check` |\n| `package` | `test`, `security` |\n\n## Next\n";
        let graph = documented_graph(readme).unwrap();
        assert_eq!(graph.len(), 3);
        assert_eq!(graph["package"], ["security", "test"]);
        assert!(graph["check"].is_empty());
    }
}
