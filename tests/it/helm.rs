//! The Helm chart in `helm/iam-credentials-exporter`: linted, rendered with every `ci/*-values.yaml`
//! file, validated against the Kubernetes schemas, and inspected for what a deployment relies on
//! (probes, security context, shard flags, image, namespace, the bundled rules and dashboards,
//! PodDisruptionBudget, extra manifests). Also checks that the chart's copies of the alert rules
//! and dashboards match their sources, that every value is commented and documented, and that
//! NOTES.txt's `curl` reaches a secured exporter (TLS and basic auth made by
//! `scripts/make-test-certificate`).
//!
//! Needs `helm`, `kubernetes-validate` and `promtool` on PATH (`scripts/test` puts them there via
//! `scripts/install-test-tools`); a missing tool fails the test.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use crate::support::tools::{repo, run, tool, Output};
use crate::support::{write_fresh_sample_report, Exporter};

const RELEASE: &str = "exporter";
const NAMESPACE: &str = "iam-test";
/// The oldest Kubernetes the chart supports in every mode (the pod-index label of sharding).
const MIN_KUBE: &str = "1.28.0";

fn chart() -> PathBuf {
    repo().join("helm/iam-credentials-exporter")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The chart's `ci/*-values.yaml` files, sorted.
fn ci_values_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(chart().join("ci"))
        .expect("read helm/iam-credentials-exporter/ci")
        .map(|e| e.expect("ci entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("-values.yaml"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected a ci values file per feature combination, found {files:?}"
    );
    files
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn parse_yaml(text: &str, what: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{what} is not YAML: {e}\n{text}"))
}

/// Every YAML document in `text`, skipping empty ones. Duplicate keys are an error.
fn parse_documents(text: &str, what: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Helm's merge of user values over defaults: maps merge key by key, a null deletes the key,
/// anything else replaces.
fn merge_values(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (k, v) in over {
                if v.is_null() {
                    base.remove(k);
                } else if let Some(existing) = base.get_mut(k) {
                    merge_values(existing, v);
                } else {
                    base.insert(k.clone(), v.clone());
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The values a ci file results in: the chart's values.yaml with the file merged over it.
fn effective_values(ci_file: &Path) -> Value {
    let mut values = parse_yaml(&read(&chart().join("values.yaml")), "values.yaml");
    let over = parse_yaml(&read(ci_file), &name_of(ci_file));
    merge_values(&mut values, &over);
    values
}

/// Follows a dotted path of mapping keys.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for key in path.split('.') {
        cur = cur
            .get(key)
            .unwrap_or_else(|| panic!("no `{key}` (of `{path}`) in:\n{}", dump(v)));
    }
    cur
}

fn opt<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for key in path.split('.') {
        cur = cur.get(key)?;
    }
    Some(cur)
}

fn str_at<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("`{path}` is not a string in:\n{}", dump(v)))
}

fn seq_at<'a>(v: &'a Value, path: &str) -> &'a Vec<Value> {
    at(v, path)
        .as_sequence()
        .unwrap_or_else(|| panic!("`{path}` is not a list in:\n{}", dump(v)))
}

/// A string under `section` whose key contains dots (a ConfigMap's or Secret's file name).
fn key_str<'a>(v: &'a Value, section: &str, key: &str) -> &'a str {
    at(v, section)
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string `{key}` under `{section}` in:\n{}", dump(v)))
}

fn dump(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap_or_default()
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Mapping(m)) => m.is_empty(),
        Some(Value::Sequence(s)) => s.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Bool(b)) => !b,
        _ => false,
    }
}

fn helm(args: &[&str]) -> Output {
    let mut helm = tool("helm");
    helm.args(args);
    run(helm, &repo(), Duration::from_secs(120))
}

/// `helm template` of the chart with a ci values file.
fn render(ci_file: &Path, kube_version: &str) -> String {
    let chart = chart();
    let out = helm(&[
        "template",
        RELEASE,
        chart.to_str().unwrap(),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        kube_version,
        "--values",
        ci_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "helm template with {} failed (if files/ lacks alerts or dashboards, run helm/sync.sh):\n{}",
        name_of(ci_file),
        out.both()
    );
    out.stdout
}

/// The rendered objects of one ci file, with the values that produced them.
struct Rendering {
    file: String,
    values: Value,
    objects: Vec<Value>,
}

impl Rendering {
    fn new(ci_file: &Path) -> Self {
        let text = render(ci_file, MIN_KUBE);
        Rendering {
            file: name_of(ci_file),
            values: effective_values(ci_file),
            objects: parse_documents(&text, &format!("helm template with {}", name_of(ci_file))),
        }
    }

    fn kinds(&self) -> BTreeSet<String> {
        self.objects
            .iter()
            .map(|o| str_at(o, "kind").to_owned())
            .collect()
    }

    fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|o| o.get("kind").and_then(Value::as_str) == Some(kind))
            .collect()
    }

    fn maybe(&self, kind: &str) -> Option<&Value> {
        let all = self.all(kind);
        assert!(all.len() <= 1, "{}: more than one {kind}", self.file);
        all.into_iter().next()
    }

    fn one(&self, kind: &str) -> &Value {
        self.maybe(kind)
            .unwrap_or_else(|| panic!("{}: no {kind} rendered", self.file))
    }

    fn value(&self, path: &str) -> Option<&Value> {
        opt(&self.values, path)
    }

    fn shards(&self) -> u64 {
        self.value("shards").and_then(Value::as_u64).unwrap_or(1)
    }

    /// The Deployment, or the StatefulSet when sharded; asserts only the right one exists.
    fn workload(&self) -> &Value {
        if self.shards() > 1 {
            assert!(
                self.maybe("Deployment").is_none(),
                "{}: sharded but a Deployment was rendered",
                self.file
            );
            self.one("StatefulSet")
        } else {
            assert!(
                self.maybe("StatefulSet").is_none(),
                "{}: one shard but a StatefulSet was rendered",
                self.file
            );
            self.one("Deployment")
        }
    }

    fn pod_spec(&self) -> &Value {
        at(self.workload(), "spec.template.spec")
    }

    fn container(&self) -> &Value {
        let containers = seq_at(self.pod_spec(), "containers");
        assert_eq!(containers.len(), 1, "{}: one container expected", self.file);
        &containers[0]
    }

    fn args(&self) -> Vec<String> {
        seq_at(self.container(), "args")
            .iter()
            .map(|a| a.as_str().expect("string arg").to_owned())
            .collect()
    }

    /// The value of `--flag=value` in the container's args, asserting it appears at most once.
    fn flag(&self, flag: &str) -> Option<String> {
        let prefix = format!("{flag}=");
        let found: Vec<String> = self
            .args()
            .iter()
            .filter_map(|a| a.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        assert!(
            found.len() <= 1,
            "{}: {flag} given {} times in {:?}",
            self.file,
            found.len(),
            self.args()
        );
        found.into_iter().next()
    }

    /// The namespace of the chart's objects: namespaceOverride, or the release's.
    fn namespace(&self) -> String {
        self.value("namespaceOverride")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(NAMESPACE)
            .to_owned()
    }

    /// The objects the chart renders itself (they carry its helm.sh/chart label), not those
    /// of extraManifests.
    fn own(&self) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|o| {
                opt(o, "metadata.labels")
                    .and_then(|l| l.get("helm.sh/chart"))
                    .is_some()
            })
            .collect()
    }

    /// Secrets of the chart's own (extraManifests may add others).
    fn own_secrets(&self) -> Vec<&Value> {
        self.own()
            .into_iter()
            .filter(|o| str_at(o, "kind") == "Secret")
            .collect()
    }

    fn uses_tls(&self) -> bool {
        self.value("webConfig.tls").and_then(Value::as_bool) == Some(true)
            || self.value("webConfig.config.tls_server_config").is_some()
    }
}

/// Where a container mounts the volume that the pod takes from `source_kind` (configMap or
/// secret) named `name`.
fn mount_of(r: &Rendering, source_kind: &str, name: &str) -> String {
    let volume = seq_at(r.pod_spec(), "volumes")
        .iter()
        .find(|v| {
            opt(v, source_kind).is_some_and(|s| {
                s.get("name")
                    .or_else(|| s.get("secretName"))
                    .and_then(Value::as_str)
                    == Some(name)
            })
        })
        .unwrap_or_else(|| panic!("{}: no volume from {source_kind} {name}", r.file));
    let volume_name = str_at(volume, "name");
    let mount = seq_at(r.container(), "volumeMounts")
        .iter()
        .find(|m| m.get("name").and_then(Value::as_str) == Some(volume_name))
        .unwrap_or_else(|| panic!("{}: volume {volume_name} is not mounted", r.file));
    assert_eq!(
        mount.get("readOnly").and_then(Value::as_bool),
        Some(true),
        "{}: {volume_name} must be mounted read-only",
        r.file
    );
    str_at(mount, "mountPath").to_owned()
}

#[test]
fn chart_lints_strictly_with_every_ci_values_file() {
    let chart = chart();
    for file in ci_values_files() {
        let out = helm(&[
            "lint",
            "--strict",
            "--kube-version",
            MIN_KUBE,
            chart.to_str().unwrap(),
            "--values",
            file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "helm lint --strict with {} failed:\n{}",
            name_of(&file),
            out.both()
        );
        for line in out.stdout.lines() {
            assert!(
                !line.contains("[WARNING]") && !line.contains("[ERROR]"),
                "helm lint with {}: {line}",
                name_of(&file)
            );
        }
    }
}

/// Kinds that need CRDs the schemas do not have; kubernetes-validate only warns about them.
const CRD_KINDS: [&str; 2] = ["ServiceMonitor", "PrometheusRule"];

#[test]
fn rendered_manifests_pass_kubernetes_validate_strict() {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ci_values_files() {
        let text = render(&file, MIN_KUBE);
        let objects = parse_documents(&text, &name_of(&file));
        let manifest = dir.path().join(name_of(&file));
        fs::write(&manifest, &text).expect("write rendered manifest");
        let core_objects = objects
            .iter()
            .filter(|o| !CRD_KINDS.contains(&str_at(o, "kind")))
            .count();
        // The oldest Kubernetes the chart supports, and the validator's newest.
        for version in [None, Some(MIN_KUBE)] {
            let mut args = vec!["--strict"];
            if let Some(v) = version {
                args.extend(["--kubernetes-version", v]);
            }
            args.push(manifest.to_str().unwrap());
            let mut validate = tool("kubernetes-validate");
            validate.args(&args);
            let out = run(validate, dir.path(), Duration::from_secs(300));
            let what = format!(
                "kubernetes-validate --strict ({}) of {}",
                version.unwrap_or("latest"),
                name_of(&file)
            );
            let mut passed = 0;
            for line in out.stdout.lines().chain(out.stderr.lines()) {
                if line.starts_with("INFO") && line.contains(" passed for resource ") {
                    passed += 1;
                } else if line.starts_with("WARN") {
                    let crd_warning = line.contains("Couldn't find schema for kind")
                        && CRD_KINDS.iter().any(|k| {
                            line.contains(&format!(
                                "kind {k} with api version monitoring.coreos.com/v1"
                            ))
                        });
                    assert!(crd_warning, "{what} warned: {line}\n{}", out.both());
                } else if !line.trim().is_empty() {
                    panic!("{what} reported: {line}\n{}", out.both());
                }
            }
            assert!(out.status.success(), "{what} failed:\n{}", out.both());
            assert_eq!(
                passed,
                core_objects,
                "{what}: every Kubernetes object must be validated\n{}",
                out.both()
            );
        }
    }
}

#[test]
fn kubernetes_validate_fails_on_a_real_error() {
    // The check above would pass vacuously if the validator accepted anything.
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("bad.yaml");
    fs::write(
        &manifest,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  prots: []\n",
    )
    .unwrap();
    let mut validate = tool("kubernetes-validate");
    validate.args(["--strict", manifest.to_str().unwrap()]);
    let out = run(validate, dir.path(), Duration::from_secs(300));
    assert!(
        !out.status.success(),
        "kubernetes-validate accepted a misspelt field:\n{}",
        out.both()
    );
}

#[test]
fn defaults_render_a_hardened_deployment_and_nothing_optional() {
    let r = Rendering::new(&chart().join("ci/default-values.yaml"));
    let kinds: Vec<String> = r.kinds().into_iter().collect();
    assert_eq!(
        kinds,
        ["Deployment", "Service", "ServiceAccount"],
        "default kinds"
    );
    let deployment = r.workload();
    assert_eq!(at(deployment, "spec.replicas").as_u64(), Some(1));
    assert!(r.flag("--config.file").is_none(), "no config by default");
    assert!(
        r.flag("--web.config.file").is_none(),
        "no web config by default"
    );
    assert!(r.flag("--shard.index").is_none() && r.flag("--shard.count").is_none());
    assert!(
        r.container().get("resources").is_none(),
        "no resources by default: {}",
        dump(r.container())
    );
    let liveness = at(r.container(), "livenessProbe.httpGet");
    assert_eq!(str_at(liveness, "scheme"), "HTTP");
    assert_eq!(
        at(r.pod_spec(), "automountServiceAccountToken").as_bool(),
        Some(false)
    );
}

#[test]
fn every_rendering_keeps_the_deployment_contract() {
    for file in ci_values_files() {
        let r = Rendering::new(&file);
        check_workload(&r);
        check_service(&r);
        check_service_account(&r);
        check_config(&r);
        check_web_config(&r);
        check_service_monitor(&r);
        check_prometheus_rule(&r);
        check_dashboards(&r);
        check_network_policy(&r);
        check_namespaces(&r);
        check_image(&r);
        check_pod_disruption_budget(&r);
        check_extra_manifests(&r);
    }
}

/// Every object of the chart's own is in namespaceOverride (or the release namespace), but for
/// those whose own `namespace` value moves them.
fn check_namespaces(r: &Rendering) {
    let f = &r.file;
    let ns = r.namespace();
    for o in r.own() {
        let kind = str_at(o, "kind");
        let moved_by = match kind {
            "ServiceMonitor" => "serviceMonitor.namespace",
            "PrometheusRule" => "prometheusRule.namespace",
            "ConfigMap" if opt(o, "data").and_then(|d| d.get("config.yml")).is_none() => {
                "grafanaDashboards.namespace"
            }
            _ => "",
        };
        let expected = r
            .value(moved_by)
            .and_then(Value::as_str)
            .filter(|s| !moved_by.is_empty() && !s.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| ns.clone());
        assert_eq!(
            str_at(o, "metadata.namespace"),
            expected,
            "{f}: the {kind}'s namespace"
        );
    }
}

/// `[registry/]repository(:tag|@digest)`, the registry from image.registry, else
/// global.imageRegistry; and the revision history kept.
fn check_image(r: &Rendering) {
    let f = &r.file;
    let value = |p: &str| {
        r.value(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut expected = str_at(&r.values, "image.repository").to_owned();
    if let Some(registry) = value("image.registry").or_else(|| value("global.imageRegistry")) {
        expected = format!("{}/{expected}", registry.trim_end_matches('/'));
    }
    match value("image.digest") {
        Some(d) => expected = format!("{expected}@{d}"),
        None => {
            let tag = value("image.tag").unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned());
            expected = format!("{expected}:{tag}");
        }
    }
    assert_eq!(str_at(r.container(), "image"), expected, "{f}: image");
    assert_eq!(
        at(r.workload(), "spec.revisionHistoryLimit").as_u64(),
        r.value("revisionHistoryLimit").and_then(Value::as_u64),
        "{f}: revisionHistoryLimit"
    );
}

fn check_pod_disruption_budget(r: &Rendering) {
    let f = &r.file;
    let enabled = r
        .value("podDisruptionBudget.enabled")
        .and_then(Value::as_bool)
        == Some(true);
    let Some(pdb) = r.maybe("PodDisruptionBudget") else {
        assert!(
            !enabled,
            "{f}: podDisruptionBudget.enabled but none rendered"
        );
        return;
    };
    assert!(enabled, "{f}: PodDisruptionBudget rendered though disabled");
    assert_eq!(str_at(pdb, "apiVersion"), "policy/v1", "{f}");
    assert_subset(
        at(pdb, "spec.selector.matchLabels"),
        at(r.workload(), "spec.template.metadata.labels"),
        &format!("{f}: PodDisruptionBudget selector"),
    );
    let min = r
        .value("podDisruptionBudget.minAvailable")
        .filter(|v| !v.is_null() && v.as_str() != Some(""));
    match min {
        Some(min) => {
            assert_eq!(opt(pdb, "spec.minAvailable"), Some(min), "{f}");
            assert!(
                opt(pdb, "spec.maxUnavailable").is_none(),
                "{f}: only one of the two"
            );
        }
        None => {
            assert_eq!(
                opt(pdb, "spec.maxUnavailable"),
                r.value("podDisruptionBudget.maxUnavailable"),
                "{f}"
            );
            assert!(
                opt(pdb, "spec.minAvailable").is_none(),
                "{f}: only one of the two"
            );
        }
    }
}

/// extraManifests: one object each, maps as given, strings through tpl.
fn check_extra_manifests(r: &Rendering) {
    let f = &r.file;
    let extra = r
        .value("extraManifests")
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    let rendered: Vec<&Value> = r
        .objects
        .iter()
        .filter(|o| {
            opt(o, "metadata.labels")
                .and_then(|l| l.get("helm.sh/chart"))
                .is_none()
        })
        .collect();
    assert_eq!(
        rendered.len(),
        extra.len(),
        "{f}: one object per extraManifests entry"
    );
    let (maps, strings): (Vec<&Value>, Vec<&Value>) = extra.iter().partition(|e| e.is_mapping());
    for given in &maps {
        assert!(
            rendered.iter().any(|o| o == given),
            "{f}: extraManifests entry not rendered as given: {}",
            dump(given)
        );
    }
    for text in strings.iter().filter_map(|s| s.as_str()) {
        assert!(
            text.contains("{{"),
            "{f}: a string entry is meant to use tpl"
        );
    }
    let templated: Vec<&&Value> = rendered.iter().filter(|o| !maps.contains(o)).collect();
    assert_eq!(templated.len(), strings.len(), "{f}");
    for o in templated {
        let name = str_at(o, "metadata.name");
        assert!(
            !name.contains("{{") && name.starts_with(RELEASE),
            "{f}: the string entry went through tpl: {name}"
        );
    }
}

fn check_workload(r: &Rendering) {
    let f = &r.file;
    let pod = r.pod_spec();
    let c = r.container();
    let port = seq_at(c, "ports")
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some("http"))
        .unwrap_or_else(|| panic!("{f}: no port named http"));
    assert_eq!(at(port, "containerPort").as_u64(), Some(10461), "{f}");
    assert_eq!(
        r.flag("--web.listen-address").as_deref(),
        Some(":10461"),
        "{f}"
    );
    assert_eq!(
        r.flag("--web.telemetry-path").as_deref(),
        r.value("telemetryPath").and_then(Value::as_str),
        "{f}"
    );

    // Secure defaults: none of the ci files loosens them.
    let pod_sc = at(pod, "securityContext");
    assert_eq!(at(pod_sc, "runAsNonRoot").as_bool(), Some(true), "{f}");
    assert_eq!(at(pod_sc, "runAsUser").as_u64(), Some(65532), "{f}");
    assert_eq!(
        str_at(pod_sc, "seccompProfile.type"),
        "RuntimeDefault",
        "{f}"
    );
    let sc = at(c, "securityContext");
    assert_eq!(at(sc, "runAsNonRoot").as_bool(), Some(true), "{f}");
    assert_eq!(at(sc, "runAsUser").as_u64(), Some(65532), "{f}");
    assert_eq!(
        at(sc, "readOnlyRootFilesystem").as_bool(),
        Some(true),
        "{f}"
    );
    assert_eq!(
        at(sc, "allowPrivilegeEscalation").as_bool(),
        Some(false),
        "{f}"
    );
    assert_eq!(str_at(sc, "seccompProfile.type"), "RuntimeDefault", "{f}");
    let dropped: Vec<&str> = seq_at(sc, "capabilities.drop")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(dropped, ["ALL"], "{f}");
    assert!(opt(sc, "capabilities.add").is_none(), "{f}");

    // Probes on the health endpoints, in the scheme the exporter serves.
    let scheme = if r.uses_tls() { "HTTPS" } else { "HTTP" };
    let readiness = at(c, "readinessProbe.httpGet");
    assert_eq!(str_at(readiness, "path"), "/-/ready", "{f}");
    assert_eq!(str_at(readiness, "port"), "http", "{f}");
    assert_eq!(str_at(readiness, "scheme"), scheme, "{f}");
    let liveness = at(c, "livenessProbe.httpGet");
    assert_eq!(str_at(liveness, "path"), "/-/healthy", "{f}");
    assert_eq!(str_at(liveness, "port"), "http", "{f}");
    assert_eq!(str_at(liveness, "scheme"), scheme, "{f}");
    // The health endpoints need no credentials (the exporter exempts them from basic auth).
    assert!(opt(liveness, "httpHeaders").is_none(), "{f}");

    // Resources only when asked for.
    assert_eq!(
        c.get("resources").is_some(),
        !is_empty(r.value("resources")),
        "{f}: resources"
    );

    // Sharding: pod i of a StatefulSet of N gets --shard.index=i --shard.count=N.
    let shards = r.shards();
    let workload = r.workload();
    assert_eq!(at(workload, "spec.replicas").as_u64(), Some(shards), "{f}");
    if shards > 1 {
        assert_eq!(r.flag("--shard.count"), Some(shards.to_string()), "{f}");
        assert_eq!(
            r.flag("--shard.index").as_deref(),
            Some("$(SHARD_INDEX)"),
            "{f}"
        );
        let env = seq_at(c, "env")
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some("SHARD_INDEX"))
            .unwrap_or_else(|| panic!("{f}: no SHARD_INDEX env var"));
        assert_eq!(
            str_at(env, "valueFrom.fieldRef.fieldPath"),
            "metadata.labels['apps.kubernetes.io/pod-index']",
            "{f}"
        );
        let service = r.one("Service");
        assert_eq!(
            str_at(workload, "spec.serviceName"),
            str_at(service, "metadata.name"),
            "{f}: the StatefulSet is governed by the chart's Service"
        );
        assert_eq!(str_at(service, "spec.clusterIP"), "None", "{f}: headless");
    } else {
        assert!(r.flag("--shard.index").is_none(), "{f}");
        assert!(r.flag("--shard.count").is_none(), "{f}");
    }

    // Selectors match the pod template's labels.
    let selector = at(workload, "spec.selector.matchLabels");
    let labels = at(workload, "spec.template.metadata.labels");
    assert_subset(selector, labels, &format!("{f}: workload selector"));
}

/// Every key of `small` is in `big` with the same value.
fn assert_subset(small: &Value, big: &Value, what: &str) {
    let small = small.as_mapping().expect("mapping");
    assert!(!small.is_empty(), "{what}: empty selector");
    for (k, v) in small {
        assert_eq!(
            big.get(k),
            Some(v),
            "{what}: {k:?} missing or different in {}",
            dump(big)
        );
    }
}

fn check_service(r: &Rendering) {
    let f = &r.file;
    let service = r.one("Service");
    assert_subset(
        at(service, "spec.selector"),
        at(r.workload(), "spec.template.metadata.labels"),
        &format!("{f}: Service selector"),
    );
    let ports = seq_at(service, "spec.ports");
    assert_eq!(ports.len(), 1, "{f}");
    assert_eq!(str_at(&ports[0], "name"), "http", "{f}");
    assert_eq!(str_at(&ports[0], "targetPort"), "http", "{f}");
}

fn check_service_account(r: &Rendering) {
    let f = &r.file;
    let name = str_at(r.pod_spec(), "serviceAccountName");
    let create = r.value("serviceAccount.create").and_then(Value::as_bool) != Some(false);
    match r.maybe("ServiceAccount") {
        Some(sa) => {
            assert!(
                create,
                "{f}: ServiceAccount rendered though create is false"
            );
            assert_eq!(str_at(sa, "metadata.name"), name, "{f}");
            assert_eq!(
                at(sa, "automountServiceAccountToken").as_bool(),
                Some(false),
                "{f}"
            );
            if let Some(arn) = r
                .value("serviceAccount.annotations")
                .and_then(|a| a.get("eks.amazonaws.com/role-arn"))
            {
                assert_eq!(
                    at(sa, "metadata.annotations").get("eks.amazonaws.com/role-arn"),
                    Some(arn),
                    "{f}: the IRSA role annotation"
                );
            }
        }
        None => {
            assert!(!create, "{f}: no ServiceAccount rendered");
            assert_eq!(
                Some(name),
                r.value("serviceAccount.name").and_then(Value::as_str),
                "{f}"
            );
        }
    }
}

fn check_config(r: &Rendering) {
    let f = &r.file;
    let config = r.value("config");
    let configmaps: Vec<&Value> = r
        .all("ConfigMap")
        .into_iter()
        .filter(|c| opt(c, "data").and_then(|d| d.get("config.yml")).is_some())
        .collect();
    if is_empty(config) {
        assert!(
            configmaps.is_empty(),
            "{f}: config ConfigMap without config"
        );
        assert!(r.flag("--config.file").is_none(), "{f}");
        return;
    }
    assert_eq!(configmaps.len(), 1, "{f}: one config ConfigMap");
    let cm = configmaps[0];
    let rendered = parse_yaml(key_str(cm, "data", "config.yml"), "config.yml");
    assert_eq!(
        Some(&rendered),
        config,
        "{f}: config.yml is the `config` value"
    );
    let dir = mount_of(r, "configMap", str_at(cm, "metadata.name"));
    assert_eq!(
        r.flag("--config.file"),
        Some(format!("{dir}/config.yml")),
        "{f}: --config.file points at the mounted ConfigMap"
    );
    assert!(
        opt(
            r.workload(),
            "spec.template.metadata.annotations.checksum/config"
        )
        .is_some(),
        "{f}: pods roll when the config changes"
    );
}

fn check_web_config(r: &Rendering) {
    let f = &r.file;
    let inline = r.value("webConfig.config");
    let existing = r
        .value("webConfig.existingSecret")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let secrets = r.own_secrets();
    if is_empty(inline) && existing.is_none() {
        assert!(secrets.is_empty(), "{f}: no Secret without a web config");
        assert!(r.flag("--web.config.file").is_none(), "{f}");
        return;
    }
    let secret_name = match existing {
        Some(name) => {
            assert!(secrets.is_empty(), "{f}: existingSecret is used as it is");
            name.to_owned()
        }
        None => {
            assert_eq!(secrets.len(), 1, "{f}");
            let rendered = parse_yaml(
                key_str(secrets[0], "stringData", "web-config.yml"),
                "web-config.yml",
            );
            assert_eq!(Some(&rendered), inline, "{f}: web-config.yml");
            str_at(secrets[0], "metadata.name").to_owned()
        }
    };
    let dir = mount_of(r, "secret", &secret_name);
    assert_eq!(
        r.flag("--web.config.file"),
        Some(format!("{dir}/web-config.yml")),
        "{f}"
    );
}

fn check_service_monitor(r: &Rendering) {
    let f = &r.file;
    let enabled = r.value("serviceMonitor.enabled").and_then(Value::as_bool) == Some(true);
    let Some(sm) = r.maybe("ServiceMonitor") else {
        assert!(!enabled, "{f}: serviceMonitor.enabled but none rendered");
        return;
    };
    assert!(enabled, "{f}: ServiceMonitor rendered though disabled");
    assert_eq!(str_at(sm, "apiVersion"), "monitoring.coreos.com/v1", "{f}");
    let service = r.one("Service");
    assert_subset(
        at(sm, "spec.selector.matchLabels"),
        at(service, "metadata.labels"),
        &format!("{f}: ServiceMonitor selector"),
    );
    let job_label = str_at(sm, "spec.jobLabel");
    assert!(
        at(service, "metadata.labels").get(job_label).is_some(),
        "{f}: jobLabel {job_label} is not a Service label"
    );
    let namespaces = seq_at(sm, "spec.namespaceSelector.matchNames");
    assert_eq!(
        namespaces,
        &[Value::from(r.namespace())],
        "{f}: the ServiceMonitor looks for the Service where the chart put it"
    );
    let endpoints = seq_at(sm, "spec.endpoints");
    assert_eq!(endpoints.len(), 1, "{f}");
    let endpoint = &endpoints[0];
    assert_eq!(str_at(endpoint, "port"), "http", "{f}");
    assert_eq!(
        Some(str_at(endpoint, "path")),
        r.value("telemetryPath").and_then(Value::as_str),
        "{f}"
    );
    let scheme = if r.uses_tls() { "https" } else { "http" };
    assert_eq!(str_at(endpoint, "scheme"), scheme, "{f}");
    if let Some(labels) = r.value("serviceMonitor.labels").and_then(Value::as_mapping) {
        if !labels.is_empty() {
            assert_subset(
                &Value::Mapping(labels.clone()),
                at(sm, "metadata.labels"),
                &format!("{f}: serviceMonitor.labels"),
            );
        }
    }
}

/// The bundled alert rules, as the repository's single source has them.
fn source_rules() -> Value {
    let path = repo().join("prometheus/alerts.yml");
    assert!(
        path.exists(),
        "prometheus/alerts.yml, the source of the chart's PrometheusRule, does not exist"
    );
    parse_yaml(&read(&path), "prometheus/alerts.yml")
}

fn check_prometheus_rule(r: &Rendering) {
    let f = &r.file;
    let enabled = r.value("prometheusRule.enabled").and_then(Value::as_bool) == Some(true);
    let Some(rule) = r.maybe("PrometheusRule") else {
        assert!(!enabled, "{f}: prometheusRule.enabled but none rendered");
        return;
    };
    assert!(enabled, "{f}: PrometheusRule rendered though disabled");
    assert_eq!(
        str_at(rule, "apiVersion"),
        "monitoring.coreos.com/v1",
        "{f}"
    );

    // The rendered groups are the source's, less disabled alerts, with the extra labels.
    let disabled: Vec<&str> = r
        .value("prometheusRule.disabledAlerts")
        .and_then(Value::as_sequence)
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let extra = r
        .value("prometheusRule.additionalAlertLabels")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    let runbook = r
        .value("prometheusRule.runbookBaseUrl")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let additional = r
        .value("prometheusRule.additionalRuleGroups")
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    // Labels: the old name and the new one, the new one winning.
    for path in ["prometheusRule.labels", "prometheusRule.additionalLabels"] {
        if let Some(labels) = r.value(path).and_then(Value::as_mapping) {
            for (k, v) in labels {
                let wins = path.ends_with("additionalLabels")
                    || r.value("prometheusRule.additionalLabels")
                        .and_then(|l| l.get(k))
                        .is_none();
                if wins {
                    assert_eq!(
                        at(rule, "metadata.labels").get(k),
                        Some(v),
                        "{f}: {path}.{k:?} on the PrometheusRule"
                    );
                }
            }
        }
    }
    let source = source_rules();
    for name in &disabled {
        let known = seq_at(&source, "groups")
            .iter()
            .flat_map(|g| seq_at(g, "rules"))
            .any(|rule| rule.get("alert").and_then(Value::as_str) == Some(name));
        assert!(
            known,
            "{f}: disabledAlerts names {name}, which is no bundled alert"
        );
    }
    let mut expected = at(&source, "groups").clone();
    let mut alerts = 0;
    for group in expected.as_sequence_mut().expect("groups is a list") {
        let rules = group
            .get_mut("rules")
            .and_then(Value::as_sequence_mut)
            .expect("a group's rules");
        rules.retain(|rule| {
            rule.get("alert")
                .and_then(Value::as_str)
                .is_none_or(|a| !disabled.contains(&a))
        });
        for rule in rules.iter_mut() {
            if rule.get("alert").is_none() {
                continue;
            }
            alerts += 1;
            let map = rule.as_mapping_mut().expect("rule mapping");
            if let Some(base) = runbook {
                let url = map
                    .get_mut("annotations")
                    .and_then(|a| a.get_mut("runbook_url"))
                    .expect("every bundled alert has a runbook_url");
                let anchor = url.as_str().unwrap().split_once('#').expect("an anchor").1;
                *url = Value::from(format!("{}#{anchor}", base.trim_end_matches('/')));
            }
            if extra.is_empty() {
                continue;
            }
            let labels = map
                .entry(Value::from("labels"))
                .or_insert_with(|| Value::Mapping(Mapping::new()));
            for (k, v) in &extra {
                labels
                    .as_mapping_mut()
                    .expect("labels mapping")
                    .insert(k.clone(), v.clone());
            }
        }
    }
    assert!(alerts > 0, "{f}: the PrometheusRule carries no alert");
    expected
        .as_sequence_mut()
        .unwrap()
        .extend(additional.iter().cloned());
    let rendered = at(rule, "spec.groups");
    if rendered != &expected {
        // Name the first rule that differs rather than printing every group.
        let names = |groups: &Value| -> Vec<String> {
            groups
                .as_sequence()
                .map(|gs| {
                    gs.iter()
                        .flat_map(|g| seq_at(g, "rules"))
                        .map(dump)
                        .collect()
                })
                .unwrap_or_default()
        };
        let (got, want) = (names(rendered), names(&expected));
        let first = got
            .iter()
            .zip(&want)
            .find(|(g, w)| g != w)
            .map(|(g, w)| format!("rendered:\n{g}\nexpected:\n{w}"))
            .unwrap_or_else(|| format!("{} rules rendered, {} expected", got.len(), want.len()));
        panic!(
            "{f}: the PrometheusRule's groups differ from prometheus/alerts.yml (with \
             runbookBaseUrl, additionalAlertLabels and additionalRuleGroups applied; if \
             files/alerts.yml is stale, run helm/sync.sh); first difference:\n{first}"
        );
    }
    for alert in at(rule, "spec.groups")
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| seq_at(g, "rules"))
        .filter(|r| r.get("alert").is_some())
    {
        assert!(
            opt(alert, "labels.severity").is_some(),
            "{f}: alert without a severity: {}",
            dump(alert)
        );
    }

    // What Prometheus gets from the operator must still be a valid rule file.
    let dir = tempfile::tempdir().expect("temp dir");
    let rules_file = dir.path().join("rules.yml");
    fs::write(&rules_file, dump(at(rule, "spec"))).expect("write rules");
    let mut promtool = tool("promtool");
    promtool.args(["check", "rules", rules_file.to_str().unwrap()]);
    let out = run(promtool, dir.path(), Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{f}: promtool check rules of the PrometheusRule's spec failed:\n{}",
        out.both()
    );
}

fn check_dashboards(r: &Rendering) {
    let f = &r.file;
    let enabled = r
        .value("grafanaDashboards.enabled")
        .and_then(Value::as_bool)
        == Some(true);
    let configmaps: Vec<&Value> = r
        .own()
        .into_iter()
        .filter(|c| str_at(c, "kind") == "ConfigMap")
        .filter(|c| opt(c, "data").and_then(|d| d.get("config.yml")).is_none())
        .collect();
    if !enabled {
        assert!(
            configmaps.is_empty(),
            "{f}: dashboards rendered though disabled"
        );
        return;
    }
    assert_eq!(configmaps.len(), 1, "{f}: one dashboards ConfigMap");
    let cm = configmaps[0];
    let label = str_at(&r.values, "grafanaDashboards.label");
    let label_value = str_at(&r.values, "grafanaDashboards.labelValue");
    assert_eq!(
        at(cm, "metadata.labels").get(label).and_then(Value::as_str),
        Some(label_value),
        "{f}: the Grafana sidecar's label"
    );
    let data = at(cm, "data").as_mapping().expect("data mapping");
    let sources = source_dashboards();
    let keys: Vec<&str> = data.keys().filter_map(Value::as_str).collect();
    let names: Vec<&str> = sources.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        keys.iter().copied().collect::<BTreeSet<_>>(),
        names.iter().copied().collect::<BTreeSet<_>>(),
        "{f}: one key per dashboards/*.json"
    );
    for (name, source) in &sources {
        let rendered = data
            .get(name.as_str())
            .and_then(Value::as_str)
            .expect("dashboard text");
        assert!(
            rendered.as_bytes() == source.as_slice(),
            "{f}: the ConfigMap's {name} differs from dashboards/{name}"
        );
        let json: serde_json::Value = serde_json::from_str(rendered)
            .unwrap_or_else(|e| panic!("{f}: {name} is not JSON: {e}"));
        assert!(json.get("uid").is_some(), "{f}: {name} has no uid");
    }
}

/// `dashboards/*.json` in the repository: name and bytes, sorted by name.
fn source_dashboards() -> Vec<(String, Vec<u8>)> {
    json_files(&repo().join("dashboards"))
}

fn json_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| (name_of(&p), fs::read(&p).expect("read dashboard")))
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
}

fn check_network_policy(r: &Rendering) {
    let f = &r.file;
    let enabled = r.value("networkPolicy.enabled").and_then(Value::as_bool) == Some(true);
    let Some(np) = r.maybe("NetworkPolicy") else {
        assert!(!enabled, "{f}: networkPolicy.enabled but none rendered");
        return;
    };
    assert!(enabled, "{f}: NetworkPolicy rendered though disabled");
    assert_subset(
        at(np, "spec.podSelector.matchLabels"),
        at(r.workload(), "spec.template.metadata.labels"),
        &format!("{f}: NetworkPolicy podSelector"),
    );
    let ingress = seq_at(np, "spec.ingress");
    assert_eq!(ingress.len(), 1, "{f}");
    assert_eq!(
        seq_at(&ingress[0], "ports")
            .iter()
            .map(|p| str_at(p, "port"))
            .collect::<Vec<_>>(),
        ["http"],
        "{f}: ingress only to the metrics port"
    );
    if r.value("networkPolicy.restrictEgress")
        .and_then(Value::as_bool)
        == Some(true)
    {
        let ports: BTreeSet<u64> = seq_at(np, "spec.egress")
            .iter()
            .flat_map(|rule| seq_at(rule, "ports"))
            .filter_map(|p| at(p, "port").as_u64())
            .collect();
        assert!(
            ports.contains(&53) && ports.contains(&443),
            "{f}: egress must allow DNS and HTTPS, got {ports:?}"
        );
    }
}

#[test]
fn sharding_refuses_kubernetes_before_1_28() {
    let chart = chart();
    let out = helm(&[
        "template",
        RELEASE,
        chart.to_str().unwrap(),
        "--kube-version",
        "1.27.9",
        "--set",
        "shards=2",
    ]);
    assert!(!out.status.success(), "rendered for 1.27:\n{}", out.stdout);
    assert!(
        out.stderr.contains("needs Kubernetes 1.28"),
        "unclear error:\n{}",
        out.both()
    );
}

#[test]
fn chart_copies_of_rules_and_dashboards_match_their_sources() {
    let files = chart().join("files");
    let mut problems = Vec::new();
    let source = repo().join("prometheus/alerts.yml");
    match (fs::read(&source), fs::read(files.join("alerts.yml"))) {
        (Err(e), _) => problems.push(format!("prometheus/alerts.yml: {e}")),
        (Ok(_), Err(_)) => problems.push("files/alerts.yml is missing".to_owned()),
        (Ok(a), Ok(b)) if a != b => {
            problems.push("files/alerts.yml differs from prometheus/alerts.yml".to_owned())
        }
        _ => {}
    }
    let sources = source_dashboards();
    if sources.is_empty() {
        problems.push("dashboards/ holds no *.json".to_owned());
    }
    let copies = json_files(&files.join("dashboards"));
    for (name, bytes) in &sources {
        match copies.iter().find(|(n, _)| n == name) {
            None => problems.push(format!("files/dashboards/{name} is missing")),
            Some((_, copy)) if copy != bytes => problems.push(format!(
                "files/dashboards/{name} differs from dashboards/{name}"
            )),
            _ => {}
        }
    }
    for (name, _) in &copies {
        if !sources.iter().any(|(n, _)| n == name) {
            problems.push(format!(
                "files/dashboards/{name} is stale: dashboards/{name} does not exist"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the chart's generated copies drifted from their sources; run helm/sync.sh:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn sync_script_check_mode_agrees() {
    let mut sync = tool("bash");
    sync.args(["helm/sync.sh", "--check"]);
    let out = run(sync, &repo(), Duration::from_secs(60));
    assert!(
        out.status.success(),
        "helm/sync.sh --check found drift:\n{}",
        out.both()
    );
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let chart_yaml = parse_yaml(&read(&chart().join("Chart.yaml")), "Chart.yaml");
    assert_eq!(
        str_at(&chart_yaml, "appVersion"),
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml appVersion must follow Cargo.toml's version"
    );
    assert_eq!(str_at(&chart_yaml, "name"), "iam-credentials-exporter");
}

/// Values whose children are plain Kubernetes fields, documented as a whole.
const PASSTHROUGH: [&str; 4] = [
    "podSecurityContext",
    "securityContext",
    "livenessProbe",
    "readinessProbe",
];

/// Dotted paths of values.yaml down to two levels, not descending into pass-through objects.
fn value_paths(values: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    for (k, v) in values.as_mapping().expect("values mapping") {
        let k = k.as_str().expect("string key");
        paths.push(k.to_owned());
        if PASSTHROUGH.contains(&k) {
            continue;
        }
        if let Some(children) = v.as_mapping() {
            for (ck, _) in children {
                paths.push(format!("{k}.{}", ck.as_str().expect("string key")));
            }
        }
    }
    paths
}

#[test]
fn every_value_is_commented_and_documented() {
    let text = read(&chart().join("values.yaml"));
    let values = parse_yaml(&text, "values.yaml");

    // A comment directly above every key of the first two levels.
    let mut undocumented = Vec::new();
    let mut parent = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        if trimmed.starts_with('#')
            || trimmed.starts_with('-')
            || key.contains(' ')
            || key.is_empty()
        {
            continue;
        }
        if indent == 0 {
            parent = key.to_owned();
        } else if indent > 2 || PASSTHROUGH.contains(&parent.as_str()) {
            continue;
        }
        let above = if i == 0 {
            ""
        } else {
            lines[i - 1].trim_start()
        };
        if !above.starts_with('#') {
            undocumented.push(format!("line {}: {}", i + 1, line.trim_end()));
        }
    }
    assert!(
        undocumented.is_empty(),
        "values.yaml keys without a comment above them:\n  {}",
        undocumented.join("\n  ")
    );

    // Every value named in the chart's README.
    let readme = read(&chart().join("README.md"));
    let missing: Vec<String> = value_paths(&values)
        .into_iter()
        .filter(|p| !readme.contains(&format!("`{p}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "values missing from helm/iam-credentials-exporter/README.md:\n  {}",
        missing.join("\n  ")
    );
    assert!(
        readme.contains("helm install") || readme.contains("helm upgrade --install"),
        "the chart README needs an install example"
    );
}

#[test]
fn chart_passes_only_flags_the_exporter_knows() {
    // Every flag of every rendering, looked up in the exporter's own --help.
    let mut exporter = Command::new(env!("CARGO_BIN_EXE_iam-credentials-exporter"));
    exporter.arg("--help");
    let help = run(exporter, &repo(), Duration::from_secs(30));
    assert!(help.status.success(), "--help failed:\n{}", help.both());
    let mut unknown = BTreeSet::new();
    for file in ci_values_files() {
        let r = Rendering::new(&file);
        for arg in r.args() {
            let flag = arg.split('=').next().unwrap();
            let known = help.stdout.match_indices(flag).any(|(i, _)| {
                let next = help.stdout[i + flag.len()..].chars().next();
                let before = help.stdout[..i].chars().next_back();
                before.is_none_or(|c| c.is_whitespace() || c == ',')
                    && next.is_none_or(|c| c.is_whitespace() || c == '=' || c == ',')
            });
            if !known {
                unknown.insert(format!("{flag} (from {})", r.file));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "the chart passes flags that `iam-credentials-exporter --help` does not list:\n  {}",
        unknown.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

/// NOTES.txt rendered with a ci values file. Helm renders NOTES.txt only on install, which
/// needs a cluster; a copy of the chart gets a template that renders the same text through
/// `tpl` into a ConfigMap, which `helm template` shows.
fn render_notes(ci_file: &Path) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("chart");
    let mut cp = Command::new("cp");
    cp.args(["-r", chart().to_str().unwrap(), copy.to_str().unwrap()]);
    assert!(run(cp, dir.path(), Duration::from_secs(30))
        .status
        .success());
    fs::copy(
        copy.join("templates/NOTES.txt"),
        copy.join("files/NOTES.txt"),
    )
    .unwrap();
    fs::write(
        copy.join("templates/notes-for-tests.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  \
         NOTES.txt: {{ tpl (.Files.Get \"files/NOTES.txt\") . | toJson }}\n",
    )
    .unwrap();
    let out = helm(&[
        "template",
        RELEASE,
        copy.to_str().unwrap(),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        MIN_KUBE,
        "--values",
        ci_file.to_str().unwrap(),
        "--show-only",
        "templates/notes-for-tests.yaml",
    ]);
    assert!(out.status.success(), "rendering NOTES.txt:\n{}", out.both());
    let doc = parse_yaml(&out.stdout, "NOTES.txt's ConfigMap");
    key_str(&doc, "data", "NOTES.txt").to_owned()
}

/// The `curl` line of NOTES.txt.
fn notes_curl(notes: &str, what: &str) -> String {
    notes
        .lines()
        .find(|l| l.trim_start().starts_with("curl "))
        .unwrap_or_else(|| panic!("{what}: NOTES.txt has no curl line:\n{notes}"))
        .trim()
        .to_owned()
}

#[test]
fn notes_curl_uses_the_scheme_and_credentials_of_each_rendering() {
    for file in ci_values_files() {
        let r = Rendering::new(&file);
        let f = &r.file;
        let notes = render_notes(&file);
        let curl = notes_curl(&notes, f);
        let scheme = if r.uses_tls() { "https://" } else { "http://" };
        assert!(curl.contains(scheme), "{f}: {curl}");
        assert!(
            notes.contains(&format!("kubectl -n {} port-forward", r.namespace())),
            "{f}: port-forward in the chart's namespace:\n{notes}"
        );
        let secret_user = r.value("serviceMonitor.basicAuth.username.name");
        let users = r
            .value("webConfig.config.basic_auth_users")
            .and_then(Value::as_mapping);
        if let Some(secret) = secret_user.and_then(Value::as_str) {
            assert!(
                curl.contains(" -u ") && curl.contains(&format!("get secret {secret} ")),
                "{f}: curl reads serviceMonitor.basicAuth's Secret: {curl}"
            );
        } else if let Some(users) = users {
            let first = users.keys().filter_map(Value::as_str).min().unwrap();
            assert!(curl.contains(&format!(" -u {first} ")), "{f}: {curl}");
        } else {
            assert!(!curl.contains(" -u "), "{f}: no basic auth, no -u: {curl}");
        }
    }
}

#[test]
fn notes_curl_reaches_an_exporter_secured_like_the_tls_values() {
    // The README's helper makes the certificate and the hash; the password is the one of the
    // Secret that ci/web-config-tls-values.yaml renders through extraManifests.
    let ci = chart().join("ci/web-config-tls-values.yaml");
    let r = Rendering::new(&ci);
    let secret = r
        .objects
        .iter()
        .find(|o| {
            str_at(o, "kind") == "Secret"
                && Some(str_at(o, "metadata.name"))
                    == r.value("serviceMonitor.basicAuth.password.name")
                        .and_then(Value::as_str)
        })
        .expect("the scrape Secret from extraManifests");
    let password = key_str(secret, "stringData", "password").to_owned();
    let username = key_str(secret, "stringData", "username").to_owned();

    let dir = tempfile::tempdir().expect("temp dir");
    let tls = dir.path().join("tls");
    let mut make = tool("bash");
    make.args([
        repo()
            .join("scripts/make-test-certificate")
            .to_str()
            .unwrap(),
        tls.to_str().unwrap(),
    ])
    .env("PASSWORD", &password);
    let out = run(make, dir.path(), Duration::from_secs(120));
    assert!(
        out.status.success(),
        "make-test-certificate:\n{}",
        out.both()
    );
    let web_config = read(&tls.join("web-config.yml"));
    assert!(
        web_config.contains(&format!("{username}: $2")),
        "the helper's web config has a bcrypt hash for {username}:\n{web_config}"
    );
    let report = dir.path().join("credential-report.csv");
    write_fresh_sample_report(&report);
    let exporter = Exporter::start(&[
        "--report.file",
        report.to_str().unwrap(),
        "--web.config.file",
        tls.join("web-config.yml").to_str().unwrap(),
    ]);

    // kubectl, as NOTES.txt calls it, answers from the rendered Secret.
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let kubectl = bin.join("kubectl");
    fs::write(
        &kubectl,
        format!(
            "#!/bin/sh\ncase \"$*\" in\n  \
             *'{{.data.username}}'*) printf %s '{username}' | base64 ;;\n  \
             *'{{.data.password}}'*) printf %s '{password}' | base64 ;;\n  \
             *) echo \"unexpected kubectl $*\" >&2; exit 1 ;;\nesac\n"
        ),
    )
    .unwrap();
    let mut chmod = Command::new("chmod");
    chmod.args(["+x", kubectl.to_str().unwrap()]);
    assert!(run(chmod, dir.path(), Duration::from_secs(10))
        .status
        .success());

    let notes = render_notes(&ci);
    let port = r.value("service.port").and_then(Value::as_u64).unwrap();
    let curl = notes_curl(&notes, "web-config-tls-values.yaml")
        .replace(&format!("127.0.0.1:{port}"), &exporter.addr.to_string());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The exporter serves its first report a moment after it listens: try for a while.
    let mut last = None;
    for _ in 0..40 {
        let mut sh = Command::new("bash");
        sh.args(["-o", "pipefail", "-c", &curl]).env("PATH", &path);
        let out = run(sh, dir.path(), Duration::from_secs(60));
        if out.status.success() && out.stdout.contains("aws_iam_check_failures") {
            last = None;
            break;
        }
        last = Some(out.both());
        std::thread::sleep(Duration::from_millis(250));
    }
    if let Some(out) = last {
        panic!("NOTES.txt's `{curl}` did not get the metrics:\n{out}");
    }
    // And the same without the password is refused, so the line above did authenticate.
    let anonymous = curl.split(" -u ").next().unwrap().to_owned()
        + " -o /dev/null -w '%{http_code}' "
        + &format!("https://{}/metrics", exporter.addr);
    let mut sh = Command::new("bash");
    sh.args(["-c", &anonymous]);
    let out = run(sh, dir.path(), Duration::from_secs(60));
    assert_eq!(out.stdout.trim(), "401", "{anonymous}: {}", out.both());
}
