//! What the hosted pages' accessibility test finds on each page (axe-core's
//! violations, the bytes it loads) and the report it writes of them.

use std::fmt::Write as _;

use serde_json::{Value, json};

/// One violation as axe reports it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub rule: String,
    pub impact: String,
    pub help: String,
    pub targets: Vec<String>,
}

impl Violation {
    pub fn is_blocking(&self) -> bool {
        self.impact == "serious" || self.impact == "critical"
    }
}

/// A page's bytes: the HTML, and the stylesheets and scripts it loads.
#[derive(Debug, Default, Clone, Copy)]
pub struct Weight {
    pub html: u64,
    pub css: u64,
    pub js: u64,
}

pub struct Checked {
    pub name: &'static str,
    pub path: &'static str,
    pub weight: Weight,
    /// Per width (`mobile`, `desktop`) and colour scheme (`desktop, dark`).
    pub violations: Vec<(&'static str, Vec<Violation>)>,
}

/// The results as a markdown table with the violations listed, and as JSON.
pub fn report(checked: &[Checked]) -> (String, Value) {
    let mut md = String::from(
        "| page | path | HTML | CSS | JS | total bytes | serious/critical | moderate | minor |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut details = String::new();
    let mut pages = Vec::new();
    for page in checked {
        let w = page.weight;
        // A rule counts once per page, whatever the width and the nodes.
        let mut rules: Vec<(&str, &str, &str)> = page
            .violations
            .iter()
            .flat_map(|(_, found)| found.iter())
            .map(|v| (v.impact.as_str(), v.rule.as_str(), v.help.as_str()))
            .collect();
        rules.sort_unstable();
        rules.dedup();
        let count = |impacts: &[&str]| rules.iter().filter(|r| impacts.contains(&r.0)).count();
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} |",
            page.name,
            page.path,
            w.html,
            w.css,
            w.js,
            w.html + w.css + w.js,
            count(&["serious", "critical"]),
            count(&["moderate"]),
            count(&["minor"]),
        );
        for (width, found) in &page.violations {
            for v in found {
                let _ = writeln!(
                    details,
                    "- {} at {width}: `{}` ({}): {}; {}",
                    page.name,
                    v.rule,
                    v.impact,
                    v.help,
                    v.targets.join(", ")
                );
            }
        }
        pages.push(json!({
            "page": page.name,
            "path": page.path,
            "bytes": {"html": w.html, "css": w.css, "js": w.js, "total": w.html + w.css + w.js},
            "axe": page.violations.iter().map(|(width, found)| (
                (*width).to_owned(),
                found.iter().map(|v| json!({
                    "rule": v.rule, "impact": v.impact, "help": v.help, "targets": v.targets,
                })).collect::<Value>(),
            )).collect::<serde_json::Map<_, _>>(),
        }));
    }
    md.push_str(
        "\nViolations (axe-core, at 360 px `mobile`, at 1280 px `desktop`, and at 1280 px \
         in the dark colour scheme `desktop, dark`):\n\n",
    );
    if details.is_empty() {
        details.push_str("- none\n");
    }
    md.push_str(&details);
    (md, json!({"pages": pages}))
}
