//! The Grafana dashboards in `dashboards/*.json`:
//!
//! - they follow the conventions (stable uid, tags, a `datasource` variable, `job` and
//!   `account_id` variables used by every query of per-account series, panels on the grid
//!   without overlap, account names beside ids, every table of accounts linking each account to
//!   the users dashboard filtered to it);
//! - they type-check with `tsc --strict` against npm's `@grafana/schema`, each panel also against
//!   its own plugin's options;
//! - every panel and variable query parses in a real Prometheus;
//! - with that Prometheus scraping the real exporter on the bundled sample report, with a config
//!   file holding one exception (so that the exception series exist), every query returns data
//!   (except the few panels in [`LIVE_ONLY`]).
//!
//! Needs `tsc` (with `@grafana/schema` in its node_modules) and `prometheus` on PATH
//! (`scripts/test` puts them there); a missing tool fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;

use crate::support::prometheus::{Prometheus, Scrape};
use crate::support::tools::run;
use crate::support::{repo, tool, write_fresh_sample_report, Exporter};

/// Panels that read metrics only live AWS provides (the account summary and the password
/// policy): a report file cannot make them return data, so here they are only parsed. The
/// live-AWS end-to-end test runs them against moto. Keep this list short: prefer queries that
/// fall back on the report (as the root account panels do).
const LIVE_ONLY: [(&str, &str); 2] = [
    ("iam-credentials-overview", "Password policy"),
    ("iam-credentials-overview", "MFA devices in use"),
];

/// The exporter-wide families: they carry no `account_id`, so a query reading only these
/// cannot filter on `$account_id` (it would select nothing), and must not. The exceptions' (an
/// exception is not an account's), the exporter's own build, account-count, discovery and
/// config-reload series, and the standard process metrics.
const EXPORTER_WIDE: [&str; 15] = [
    "aws_iam_exception_info",
    "aws_iam_exception_expiry_timestamp_seconds",
    "aws_iam_exception_matches",
    "iam_credentials_exporter_build_info",
    "iam_credentials_exporter_accounts",
    "iam_credentials_exporter_organization_discovery_success",
    "iam_credentials_exporter_organization_accounts",
    "iam_credentials_exporter_config_last_reload_successful",
    "iam_credentials_exporter_config_last_reload_success_timestamp_seconds",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
];

/// Prefixes of the exporter's metric names: its data, its own health, its process.
const PREFIXES: [&str; 3] = ["aws_iam_", "iam_credentials_exporter_", "process_"];

/// The metric names in a query that start with one of [`PREFIXES`].
fn exporter_families(expr: &str) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    for prefix in PREFIXES {
        let mut rest = expr;
        while let Some(i) = rest.find(prefix) {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            // A label or a longer word that merely contains the prefix is not a metric name.
            let preceded = rest[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if !preceded {
                out.insert(&tail[..end]);
            }
            rest = &tail[end..];
        }
    }
    out
}

/// The users dashboard, which tables of accounts link to.
const USERS_UID: &str = "iam-credentials-users";

/// Whether a panel's queries give the account's display name: joined from
/// `aws_iam_account_info` onto the query's series as the `account` label.
fn names_accounts(expr: &str) -> bool {
    expr.contains("group_left (account)") && expr.contains("aws_iam_account_info")
}

/// Whether a table panel links its `Account` column to the users dashboard with the row's
/// account id.
fn links_accounts_to_users(panel: &Json) -> bool {
    panel["fieldConfig"]["overrides"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["matcher"]["options"] == "Account")
        .flat_map(|o| o["properties"].as_array().into_iter().flatten())
        .filter(|p| p["id"] == "links")
        .flat_map(|p| p["value"].as_array().into_iter().flatten())
        .filter_map(|l| l["url"].as_str())
        .any(|url| {
            url.starts_with(&format!("/d/{USERS_UID}/"))
                && url.contains("var-account_id=${__data.fields.account_id}")
        })
}

/// The config file the data test runs the exporter with: one exception, muting bob's
/// console_user_without_mfa in the sample, ending 30 days from today (well within the one-year
/// limit, and not expired whatever day the test runs).
fn config_with_an_exception() -> String {
    let expires = chrono::Utc::now().date_naive() + chrono::Days::new(30);
    format!(
        "exceptions:\n  - id: dashboard-test\n    checks: [console_user_without_mfa]\n    users: [bob]\n    \
         reason: \"The dashboards' data test\"\n    owner: tests\n    expires: {expires}\n"
    )
}

/// The datasource reference every panel and query uses.
fn datasource_ref() -> Json {
    serde_json::json!({"type": "prometheus", "uid": "${datasource}"})
}

/// One dashboard file.
struct Dashboard {
    /// File name.
    file: String,
    json: Json,
}

impl Dashboard {
    fn uid(&self) -> &str {
        self.json["uid"].as_str().unwrap_or_default()
    }

    /// Every panel, rows' nested panels included.
    fn panels(&self) -> Vec<&Json> {
        let mut out = Vec::new();
        for p in self.json["panels"].as_array().into_iter().flatten() {
            out.push(p);
            out.extend(p["panels"].as_array().into_iter().flatten());
        }
        out
    }

    /// The template variables.
    fn variables(&self) -> Vec<&Json> {
        self.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .collect()
    }

    /// Every PromQL query: panel targets and query variables.
    fn queries(&self) -> Vec<Query> {
        let mut out = Vec::new();
        for p in self.panels() {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push(Query {
                    dashboard: self.uid().to_owned(),
                    what: format!("panel {title:?} query {}", t["refId"]),
                    panel: Some(title.clone()),
                    expr: t["expr"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        for v in self
            .variables()
            .into_iter()
            .filter(|v| v["type"] == "query")
        {
            let q = v["query"]["query"]
                .as_str()
                .or_else(|| v["query"].as_str())
                .unwrap_or_default();
            out.push(Query {
                dashboard: self.uid().to_owned(),
                what: format!("variable {}", v["name"]),
                panel: None,
                expr: variable_to_promql(q)
                    .unwrap_or_else(|| panic!("{}: variable query {q:?}", self.file)),
            });
        }
        out
    }
}

/// A query to run, and where it comes from.
struct Query {
    dashboard: String,
    /// For messages: the panel and refId, or the variable.
    what: String,
    panel: Option<String>,
    expr: String,
}

impl Query {
    fn live_only(&self) -> bool {
        LIVE_ONLY
            .iter()
            .any(|(d, t)| *d == self.dashboard && self.panel.as_deref() == Some(*t))
    }
}

/// Grafana's `label_values(SELECTOR, LABEL)` as the PromQL it amounts to.
fn label_values_to_promql(q: &str) -> Option<String> {
    let inner = q.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some(format!("group by ({}) ({})", label.trim(), selector.trim()))
}

/// A query variable's query as PromQL: `label_values(...)`, or `query_result(EXPR)` (whose
/// series the variable's regex turns into text and value), EXPR itself.
fn variable_to_promql(q: &str) -> Option<String> {
    if let Some(inner) = q.trim().strip_prefix("query_result(") {
        return Some(inner.strip_suffix(')')?.to_owned());
    }
    label_values_to_promql(q)
}

fn dashboards() -> Vec<Dashboard> {
    let dir = repo().join("dashboards");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards/*.json");
    files
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            Dashboard {
                file: p.file_name().unwrap().to_string_lossy().into_owned(),
                json: serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display())),
            }
        })
        .collect()
}

/// Replaces Grafana variables as a test run needs them: dashboard variables by `.+` (all
/// values, as the "All" option sends), interval variables by a duration. An unknown variable is
/// an error.
fn substitute(expr: &str, variables: &BTreeSet<String>) -> Result<String, String> {
    let value = |name: &str| -> Result<&'static str, String> {
        match name {
            // label_replace's capture groups: Grafana leaves `$1` alone (no variable has that
            // name), and so does the test.
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Ok(""),
            "__rate_interval" | "__interval" | "__range" => Ok("1h"),
            "__range_s" => Ok("3600"),
            "__interval_ms" | "__range_ms" => Ok("3600000"),
            "datasource" => Err("$datasource inside a query".into()),
            n if variables.contains(n) => Ok(".+"),
            n => Err(format!("unknown variable ${n}")),
        }
    };
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        let (name, len) = if let Some(braced) = rest.strip_prefix('{') {
            let end = braced.find('}').ok_or("unclosed ${")?;
            let name = braced[..end].split(':').next().unwrap_or_default();
            (name, end + 2)
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], end)
        };
        match value(name)? {
            "" => {
                out.push('$');
                out.push_str(&rest[..len]);
            }
            v => out.push_str(v),
        }
        rest = &rest[len..];
    }
    out.push_str(rest);
    Ok(out)
}

#[test]
fn dashboards_follow_the_conventions() {
    let mut problems = Vec::new();
    let mut uids = BTreeSet::new();
    for d in dashboards() {
        let f = d.file.clone();
        let mut bad = |what: String| problems.push(format!("{f}: {what}"));
        let uid = d.uid();
        if format!("{uid}.json") != d.file || uid.is_empty() || uid.len() > 40 {
            bad(format!(
                "uid {uid:?}: must be the file name and at most 40 characters"
            ));
        }
        if !uids.insert(uid.to_owned()) {
            bad(format!("uid {uid:?} used twice"));
        }
        if d.json["title"].as_str().unwrap_or_default().is_empty() {
            bad("no title".into());
        }
        let tags: Vec<&str> = d.json["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .collect();
        if !tags.contains(&"iam-credentials") {
            bad(format!("tags {tags:?} lack iam-credentials"));
        }
        let schema = d.json["schemaVersion"].as_u64().unwrap_or_default();
        if !(36..=41).contains(&schema) {
            bad(format!("schemaVersion {schema}"));
        }
        if !d.json["id"].is_null() {
            bad("id must be null (Grafana assigns it)".into());
        }

        let vars: BTreeMap<&str, &Json> = d
            .variables()
            .into_iter()
            .map(|v| (v["name"].as_str().unwrap_or_default(), v))
            .collect();
        match vars.get("datasource") {
            Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
            _ => bad("no `datasource` variable of type datasource for prometheus".into()),
        }
        for name in ["job", "account_id"] {
            match vars.get(name) {
                Some(v) if v["type"] == "query" && v["datasource"] == datasource_ref() => {}
                _ => bad(format!("no `{name}` query variable on ${{datasource}}")),
            }
        }
        // The account selector shows display names, its values are the ids.
        if let Some(v) = vars.get("account_id") {
            let q = v["query"]["query"].as_str().unwrap_or_default();
            let regex = v["regex"].as_str().unwrap_or_default();
            if !(q.starts_with("query_result(")
                && names_accounts(&format!("group_left (account) {q}"))
                && regex.contains("(?<text>")
                && regex.contains("(?<value>"))
            {
                bad("`account_id` must list accounts by name (query_result of aws_iam_account_info, regex capturing text and value)".into());
            }
        }

        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(String, [i64; 4])> = Vec::new();
        for p in d.panels() {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            if !ids.insert(p["id"].as_i64().unwrap_or(-1)) {
                bad(format!(
                    "panel {title:?}: id {} missing or used twice",
                    p["id"]
                ));
            }
            let g = &p["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_i64().unwrap_or(-1));
            if x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > 24 {
                bad(format!("panel {title:?}: gridPos {g}"));
            }
            for (other, [ox, oy, ow, oh]) in &boxes {
                if x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h {
                    bad(format!("panels {title:?} and {other:?} overlap"));
                }
            }
            boxes.push((title.clone(), [x, y, w, h]));
            let kind = p["type"].as_str().unwrap_or_default();
            if kind == "row" || kind == "text" {
                continue;
            }
            if title.is_empty() || p["description"].as_str().unwrap_or_default().is_empty() {
                bad(format!("panel {title:?}: needs a title and a description"));
            }
            if p["datasource"] != datasource_ref() {
                bad(format!(
                    "panel {title:?}: datasource is not ${{datasource}}"
                ));
            }
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                bad(format!("panel {title:?}: no queries"));
            }
            // Accounts by name: a legend or table of accounts shows the display name, and a
            // table's Account column links to the users dashboard filtered to that account.
            for t in &targets {
                let expr = t["expr"].as_str().unwrap_or_default();
                let legend = t["legendFormat"].as_str().unwrap_or_default();
                if legend.contains("{{account_id}}") {
                    bad(format!(
                        "panel {title:?}: legend {legend:?} shows the account id: use {{{{account}}}}"
                    ));
                }
                if legend.contains("{{account}}") && !names_accounts(expr) {
                    bad(format!(
                        "panel {title:?}: legend {{{{account}}}} but `{expr}` does not join aws_iam_account_info"
                    ));
                }
            }
            let lists_accounts = kind == "table"
                && targets.iter().any(|t| {
                    let expr = t["expr"].as_str().unwrap_or_default();
                    expr.contains("account_id")
                        && exporter_families(expr)
                            .iter()
                            .any(|f| !EXPORTER_WIDE.contains(f))
                });
            let matrix = p["transformations"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["id"] == "groupingToMatrix");
            if lists_accounts {
                let named = targets
                    .iter()
                    .all(|t| names_accounts(t["expr"].as_str().unwrap_or_default()));
                if !named {
                    bad(format!(
                        "panel {title:?}: a table of accounts whose queries do not all join the account's name"
                    ));
                }
                if !matrix && !links_accounts_to_users(p) {
                    bad(format!(
                        "panel {title:?}: the Account column must link to /d/{USERS_UID}/ with var-account_id=${{__data.fields.account_id}}"
                    ));
                }
            }
            for t in targets {
                let expr = t["expr"].as_str().unwrap_or_default();
                if t["datasource"] != datasource_ref() {
                    bad(format!(
                        "panel {title:?}: a query's datasource is not ${{datasource}}"
                    ));
                }
                if !expr.contains(r#"job=~"$job""#) {
                    bad(format!("panel {title:?}: `{expr}` ignores $job"));
                }
                let families = exporter_families(expr);
                let per_account = families.iter().any(|f| !EXPORTER_WIDE.contains(f));
                if per_account && !expr.contains(r#"account_id=~"$account_id""#) {
                    bad(format!("panel {title:?}: `{expr}` ignores $account_id"));
                }
                if !families.is_empty() && !per_account && expr.contains("account_id") {
                    bad(format!(
                        "panel {title:?}: `{expr}` filters exporter-wide series (no account_id) on the account"
                    ));
                }
            }
        }
    }
    for (d, t) in LIVE_ONLY {
        if !dashboards()
            .iter()
            .any(|x| x.uid() == d && x.panels().iter().any(|p| p["title"] == t))
        {
            problems.push(format!("LIVE_ONLY names {d}/{t:?}, which does not exist"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Declarations shared by the generated TypeScript files.
const PRELUDE: &str = r#"
import type { DataQuery, Dashboard, FieldConfigSource, Panel, RowPanel } from '@grafana/schema';
import type * as bargauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as text from '@grafana/schema/dist/esm/raw/composable/text/panelcfg/x/TextPanelCfg_types.gen';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

export type { Dashboard };

// JSON spells an enum member by its value, which a TypeScript string enum does not accept:
// map every string (enum) type to the union of its values and keep everything else as strict.
export type Json<T> = T extends string
  ? `${T}`
  : T extends ReadonlyArray<infer U>
    ? Array<Json<U>>
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

// A query of Grafana's Prometheus data source (its fields are not in @grafana/schema).
export interface PrometheusQuery extends DataQuery {
  expr: string;
  editorMode?: 'code' | 'builder';
  format?: 'time_series' | 'table' | 'heatmap';
  instant?: boolean;
  range?: boolean;
  exemplar?: boolean;
  interval?: string;
  intervalFactor?: number;
  legendFormat?: string;
}

type PanelOf<Type extends string, Options, Custom> =
  Omit<Panel, 'type' | 'options' | 'fieldConfig' | 'targets'> & {
    type: Type;
    options: Options;
    fieldConfig: FieldConfigSource<Custom>;
    targets: PrometheusQuery[];
  };

// The panel types the dashboards use, each with its plugin's options and field config. A new
// panel type needs a line here.
export type KnownPanel =
  | PanelOf<'bargauge', bargauge.Options, Record<string, never>>
  | PanelOf<'stat', stat.Options, Record<string, never>>
  | PanelOf<'table', table.Options, table.FieldConfig>
  | PanelOf<'timeseries', timeseries.Options, timeseries.FieldConfig>
  | (Omit<Panel, 'type' | 'options' | 'targets' | 'datasource'> & { type: 'text'; options: text.Options })
  | (Omit<RowPanel, 'panels'> & { panels: [] });

export type StrictDashboard = Omit<Dashboard, 'panels'> & { panels: KnownPanel[] };
"#;

/// The node_modules holding `@grafana/schema`: `NODE_PATH`, else
/// `$IAM_EXPORTER_TOOLS/node/node_modules`, else the one whose `.bin` holds `tsc`.
fn node_modules() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::env::var_os("NODE_PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(t) = std::env::var_os("IAM_EXPORTER_TOOLS") {
        candidates.push(Path::new(&t).join("node/node_modules"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.ends_with("node_modules/.bin") && d.join("tsc").exists() {
                candidates.push(d.parent().unwrap().to_owned());
            }
        }
    }
    candidates
        .iter()
        .find(|d| d.join("@grafana/schema/package.json").is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "@grafana/schema not found in {candidates:?}: run the suite through scripts/test, \
                 which installs it"
            )
        })
}

#[test]
fn dashboards_type_check_against_grafana_schema() {
    let modules = node_modules();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("prelude.ts"), PRELUDE).unwrap();
    let mut files = vec!["prelude.ts".to_owned()];
    for d in dashboards() {
        let text = serde_json::to_string_pretty(&d.json).unwrap();
        let name = d
            .file
            .trim_end_matches(".json")
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        // The same literal twice: once against the dashboard schema alone, once with every
        // panel checked against its plugin's options.
        let ts = format!(
            "// {file}\nimport type {{ Dashboard, Json, StrictDashboard }} from './prelude';\n\
             export const schema: Json<Dashboard> = {text};\n\
             export const strict: Json<StrictDashboard> = {text};\n",
            file = d.file
        );
        fs::write(dir.path().join(format!("{name}.ts")), ts).unwrap();
        files.push(format!("{name}.ts"));
    }
    let m = modules.display().to_string();
    let tsconfig = serde_json::json!({
        "compilerOptions": {
            "strict": true,
            "noEmit": true,
            "target": "ES2022",
            "module": "commonjs",
            "moduleResolution": "node10",
            "skipLibCheck": true,
            "types": [],
            "typeRoots": [format!("{m}/@types")],
            "baseUrl": ".",
            "paths": {
                "@grafana/schema": [format!("{m}/@grafana/schema")],
                "@grafana/schema/*": [format!("{m}/@grafana/schema/*")],
            },
        },
        "files": files,
    });
    fs::write(
        dir.path().join("tsconfig.json"),
        serde_json::to_string_pretty(&tsconfig).unwrap(),
    )
    .unwrap();
    let mut cmd = tool("tsc");
    cmd.args(["-p", ".", "--strict", "--noEmit"])
        .env("NODE_PATH", &modules);
    let out = run(cmd, dir.path(), Duration::from_secs(300));
    assert!(
        out.status.success(),
        "tsc --strict found dashboards that do not match @grafana/schema (line numbers are in \
         the generated files, which pretty-print the JSON):\n{}",
        out.both()
    );
}

/// Every query with its variables substituted, or the problem with it.
fn substituted_queries() -> Vec<(Query, Result<String, String>)> {
    let mut out = Vec::new();
    for d in dashboards() {
        let vars: BTreeSet<String> = d
            .variables()
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect();
        for q in d.queries() {
            let s = substitute(&q.expr, &vars);
            out.push((q, s));
        }
    }
    out
}

#[test]
fn every_query_parses() {
    let prom = Prometheus::start(&[], &[]);
    let mut problems = Vec::new();
    let queries = substituted_queries();
    for (q, expr) in &queries {
        let result = expr.clone().and_then(|e| prom.query(&e).map(|_| ()));
        if let Err(e) = result {
            problems.push(format!("{} {}: `{}`: {e}", q.dashboard, q.what, q.expr));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    println!("{} queries parse", queries.len());
}

#[test]
fn every_query_returns_data_from_the_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("credential-report.csv");
    write_fresh_sample_report(&report);
    let config = dir.path().join("config.yml");
    fs::write(&config, config_with_an_exception()).unwrap();
    let exporter = Exporter::start(&[
        "--report.file",
        report.to_str().unwrap(),
        "--config.file",
        config.to_str().unwrap(),
    ]);
    let prom = Prometheus::start(
        &[Scrape {
            job: "iam-credentials-exporter",
            target: exporter.addr,
        }],
        &[],
    );
    // The exception mutes a finding, so every exception panel has something to show.
    prom.wait_for_data(
        r#"aws_iam_exception_matches{job="iam-credentials-exporter",exception="dashboard-test"} == 1"#,
        Duration::from_secs(30),
    );
    // Range functions (increase over counters) need a few scrapes.
    prom.wait_for_data(
        r#"count_over_time(iam_credentials_exporter_build_info{job="iam-credentials-exporter"}[1m]) >= 3"#,
        Duration::from_secs(60),
    );

    let mut problems = Vec::new();
    let (mut with_data, mut live_only) = (0, 0);
    for (q, expr) in substituted_queries() {
        let expr = match expr {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("{} {}: {e}", q.dashboard, q.what));
                continue;
            }
        };
        match (prom.query(&expr), q.live_only()) {
            (Err(e), _) => problems.push(format!("{} {}: `{expr}`: {e}", q.dashboard, q.what)),
            (Ok(r), false) if r.is_empty() => problems.push(format!(
                "{} {}: `{expr}` returned no data on the sample report",
                q.dashboard, q.what
            )),
            (Ok(r), true) if !r.is_empty() => problems.push(format!(
                "{} {}: `{expr}` returns data from a report file: take it off LIVE_ONLY",
                q.dashboard, q.what
            )),
            (Ok(_), false) => with_data += 1,
            (Ok(_), true) => live_only += 1,
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n--- exporter's /metrics ---\n{}",
        problems.join("\n"),
        exporter.metrics()
    );
    println!("{with_data} queries returned data; {live_only} live-only queries ran empty");

    // File mode has no aws_iam_account_info (a config's account `name` and the live alias
    // give it), so above every account went by its id. Stand a series with a display name in
    // for it: every query that names accounts must then show that name, and no id.
    let info = regex::Regex::new(r"aws_iam_account_info\{[^}]*\}").unwrap();
    let stand_in = r#"label_replace(group by (account_id, job) (iam_credentials_exporter_refresh_success{job="iam-credentials-exporter"}), "name", "Payments prod", "", "")"#;
    let mut named = 0;
    for (q, expr) in substituted_queries() {
        let Ok(expr) = expr else { continue };
        if q.live_only() || !expr.contains("aws_iam_account_info") {
            continue;
        }
        let expr = info.replace_all(&expr, stand_in).into_owned();
        match prom.query(&expr) {
            Err(e) => problems.push(format!("{} {}: `{expr}`: {e}", q.dashboard, q.what)),
            Ok(r) if r.is_empty() => problems.push(format!(
                "{} {}: `{expr}` returned no data with a named account",
                q.dashboard, q.what
            )),
            Ok(r) => {
                for series in r {
                    let account = series["metric"]["account"].as_str();
                    if account != Some("Payments prod") {
                        problems.push(format!(
                            "{} {}: account {account:?} instead of the display name in {}",
                            q.dashboard, q.what, series["metric"]
                        ));
                    }
                }
                named += 1;
            }
        }
    }
    assert!(named > 0, "no query names accounts");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    println!("{named} queries show the account's display name");
}

#[test]
fn substitution_replaces_every_variable_form() {
    let vars = BTreeSet::from(["job".to_owned(), "account_id".to_owned()]);
    assert_eq!(
        substitute(
            r#"rate(x{job=~"$job", account_id=~"${account_id:regex}"}[$__rate_interval])"#,
            &vars
        ),
        Ok(r#"rate(x{job=~".+", account_id=~".+"}[1h])"#.to_owned())
    );
    assert!(substitute("x{a=~\"$nope\"}", &vars).is_err());
    assert_eq!(
        exporter_families(
            r#"max by (exception) (aws_iam_exception_matches{job=~"$job"}) * on (x) aws_iam_users{x_aws_iam_y="1"} + process_open_fds + iam_credentials_exporter_accounts"#
        ),
        BTreeSet::from([
            "aws_iam_exception_matches",
            "aws_iam_users",
            "process_open_fds",
            "iam_credentials_exporter_accounts"
        ])
    );
    assert_eq!(
        substitute(
            r#"label_replace(x{a=~"$job"}, "b", "$1", "c", "(.+)")"#,
            &vars
        ),
        Ok(r#"label_replace(x{a=~".+"}, "b", "$1", "c", "(.+)")"#.to_owned())
    );
    assert_eq!(
        variable_to_promql("query_result(group by (a) (x))"),
        Some("group by (a) (x)".to_owned())
    );
    assert_eq!(
        label_values_to_promql(r#"label_values(aws_iam_users{job=~"$job"}, account_id)"#),
        Some(r#"group by (account_id) (aws_iam_users{job=~"$job"})"#.to_owned())
    );
}
