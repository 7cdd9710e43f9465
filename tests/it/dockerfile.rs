//! The container image, checked without a Docker engine: `hadolint` lints the Dockerfile, the
//! image's contract (distroless final stage, numeric non-root user, port, entrypoint, OCI labels)
//! is read from the file, and the build stage's `RUN cargo build` command is run verbatim
//! against this repository to prove it builds the binary the image ships.
//!
//! Needs `hadolint` on PATH (`scripts/test` puts it there via `scripts/install-test-tools`); a
//! missing tool fails the test. The build shares `CARGO_TARGET_DIR` with the rest of the suite,
//! and its profile is `--release`, so it reuses (and leaves) the release build cache.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::tools::{repo, run, tool};

const BIN: &str = "iam-credentials-exporter";

/// One Dockerfile instruction, continuation lines joined.
#[derive(Debug)]
struct Instruction {
    /// Upper-case keyword: FROM, RUN, COPY, ...
    keyword: String,
    /// Everything after the keyword, whitespace-collapsed.
    args: String,
    /// 1-based line where the instruction starts.
    line: usize,
}

/// A build stage: its FROM and what follows it.
#[derive(Debug)]
struct Stage {
    /// The image after FROM.
    base: String,
    /// The `AS name`, if any.
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a Instruction> {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
    }
}

/// The global ARGs (before the first FROM) and the stages of the Dockerfile.
struct Dockerfile {
    global_args: Vec<Instruction>,
    stages: Vec<Stage>,
}

impl Dockerfile {
    fn load() -> Self {
        let text = fs::read_to_string(repo().join("Dockerfile")).expect("read Dockerfile");
        Self::parse(&text)
    }

    fn parse(text: &str) -> Self {
        let mut instructions = Vec::new();
        let mut current: Option<(usize, String)> = None;
        for (i, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            if trimmed.starts_with('#') {
                // Comment lines, also inside a continued instruction, are dropped.
                continue;
            }
            if current.is_none() && trimmed.is_empty() {
                continue;
            }
            let (continues, body) = match trimmed.strip_suffix('\\') {
                Some(body) => (true, body),
                None => (false, trimmed),
            };
            let entry = current.get_or_insert_with(|| (i + 1, String::new()));
            entry.1.push(' ');
            entry.1.push_str(body);
            if !continues {
                let (line, full) = current.take().unwrap();
                let full = full.split_whitespace().collect::<Vec<_>>().join(" ");
                let (keyword, args) = full.split_once(' ').unwrap_or((&full, ""));
                instructions.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.to_owned(),
                    line,
                });
            }
        }
        assert!(current.is_none(), "Dockerfile ends inside a continued line");

        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for ins in instructions {
            if ins.keyword == "FROM" {
                let words: Vec<&str> = ins.args.split_whitespace().collect();
                let words: Vec<&str> = words
                    .into_iter()
                    .filter(|w| !w.starts_with("--platform"))
                    .collect();
                let name = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                    [_] => None,
                    _ => panic!("line {}: unexpected FROM {}", ins.line, ins.args),
                };
                stages.push(Stage {
                    base: words[0].to_owned(),
                    name,
                    instructions: Vec::new(),
                });
            } else if let Some(stage) = stages.last_mut() {
                stage.instructions.push(ins);
            } else {
                assert_eq!(
                    ins.keyword, "ARG",
                    "line {}: only ARG may precede FROM",
                    ins.line
                );
                global_args.push(ins);
            }
        }
        assert!(!stages.is_empty(), "the Dockerfile has no FROM");
        Dockerfile {
            global_args,
            stages,
        }
    }

    fn stage(&self, name: &str) -> &Stage {
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no stage named {name}"))
    }

    fn last(&self) -> &Stage {
        self.stages.last().unwrap()
    }

    /// The stage that runs `cargo build`: exactly one RUN in the whole file does.
    fn build_command(&self) -> (&Stage, Vec<String>) {
        let mut found = Vec::new();
        for stage in &self.stages {
            for run in stage.all("RUN") {
                if run.args.starts_with("cargo build") {
                    found.push((stage, run));
                }
            }
        }
        assert_eq!(
            found.len(),
            1,
            "expected one `RUN cargo build` in the Dockerfile, found {found:?}"
        );
        let (stage, run) = found[0];
        assert!(
            !run.args
                .contains(['&', '|', ';', '>', '<', '$', '`', '"', '\'', '\\']),
            "line {}: keep `RUN cargo build` a plain command (the test runs it verbatim): {}",
            run.line,
            run.args
        );
        (stage, run.args.split(' ').map(str::to_owned).collect())
    }
}

/// The Cargo profile directory that `cargo build` args select (target/<dir>/).
fn profile_dir(args: &[String]) -> String {
    if args.iter().any(|a| a == "--release" || a == "-r") {
        return "release".to_owned();
    }
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        let p = &args[i + 1];
        return if p == "dev" {
            "debug".into()
        } else {
            p.clone()
        };
    }
    if let Some(p) = args.iter().find_map(|a| a.strip_prefix("--profile=")) {
        return if p == "dev" {
            "debug".into()
        } else {
            p.to_owned()
        };
    }
    "debug".to_owned()
}

/// Flags that choose how dependencies are compiled: the cook and the build must agree on them,
/// or the cached dependency layer is not the one the build uses.
fn profile_flags(args: &[String]) -> Vec<String> {
    let mut flags = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--release"
            | "-r"
            | "--locked"
            | "--frozen"
            | "--offline"
            | "--all-features"
            | "--no-default-features" => flags.push(a.clone()),
            "--profile" | "--features" | "-F" | "--target" => {
                flags.push(format!("{a}={}", it.next().expect("flag value")))
            }
            _ if a.starts_with("--profile=")
                || a.starts_with("--features=")
                || a.starts_with("--target=") =>
            {
                flags.push(a.clone())
            }
            _ => {}
        }
    }
    flags.sort();
    flags
}

fn words(args: &str) -> Vec<String> {
    args.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn hadolint_finds_nothing() {
    let mut hadolint = tool("hadolint");
    hadolint.args([
        "--no-color",
        // Report style issues too, and let no inline pragma hide one.
        "--failure-threshold",
        "style",
        "--disable-ignore-pragma",
        "Dockerfile",
    ]);
    let out = run(hadolint, &repo(), Duration::from_secs(120));
    assert!(
        out.status.success() && out.stdout.trim().is_empty(),
        "hadolint reports problems in the Dockerfile:\n{}",
        out.both()
    );
}

#[test]
fn final_image_is_distroless_non_root_with_the_exporter_as_entrypoint() {
    let dockerfile = Dockerfile::load();
    let last = dockerfile.last();
    assert!(
        last.base.starts_with("gcr.io/distroless/") && last.base.ends_with(":nonroot"),
        "the final stage should be a distroless :nonroot image, not {}",
        last.base
    );

    let users: Vec<&Instruction> = last.all("USER").collect();
    assert_eq!(users.len(), 1, "one USER in the final stage");
    let user = &users[0].args;
    let uid = user.split(':').next().unwrap();
    assert_eq!(
        uid, "65532",
        "USER must be the numeric non-root user (Kubernetes' runAsNonRoot cannot check a name): {user}"
    );
    assert!(
        user.split(':')
            .all(|p| p.parse::<u32>().is_ok_and(|n| n != 0)),
        "USER must be numeric and not root: {user}"
    );

    let exposed: Vec<&str> = last.all("EXPOSE").map(|e| e.args.as_str()).collect();
    assert_eq!(exposed, ["10461"], "the exporter's default port");

    let entrypoints: Vec<&Instruction> = last.all("ENTRYPOINT").collect();
    assert_eq!(entrypoints.len(), 1, "one ENTRYPOINT");
    let entry: Vec<String> = serde_json::from_str(&entrypoints[0].args)
        .expect("ENTRYPOINT in exec (JSON) form, so that signals reach the exporter");
    let binary = entry.first().expect("an ENTRYPOINT program").clone();
    assert!(binary.ends_with(&format!("/{BIN}")), "ENTRYPOINT {entry:?}");

    // The entrypoint is the binary the build stage produced.
    let (build_stage, build) = dockerfile.build_command();
    let build_name = build_stage
        .name
        .as_deref()
        .expect("the build stage has a name");
    let copies: Vec<Vec<String>> = last
        .all("COPY")
        .map(|c| words(&c.args))
        .filter(|w| w.contains(&binary))
        .collect();
    assert_eq!(copies.len(), 1, "one COPY puts {binary} in the image");
    let copy = &copies[0];
    assert_eq!(
        copy[0],
        format!("--from={build_name}"),
        "the binary comes from the build stage"
    );
    let workdir = build_stage
        .all("WORKDIR")
        .last()
        .map(|w| w.args.clone())
        .or_else(|| {
            // WORKDIR may be inherited from the stage the build stage is based on.
            dockerfile
                .stages
                .iter()
                .find(|s| s.name.as_deref() == Some(build_stage.base.as_str()))
                .and_then(|base| base.all("WORKDIR").last().map(|w| w.args.clone()))
        })
        .expect("the build stage sets a WORKDIR");
    let produced = format!(
        "{}/target/{}/{BIN}",
        workdir.trim_end_matches('/'),
        profile_dir(&build)
    );
    assert_eq!(copy[1], produced, "COPY takes what `cargo build` produced");
    assert!(
        build.windows(2).any(|w| w[0] == "--bin" && w[1] == BIN)
            || !build.contains(&"--bin".into()),
        "the build builds {BIN}: {build:?}"
    );
}

#[test]
fn image_carries_oci_labels_and_its_version() {
    let dockerfile = Dockerfile::load();
    let last = dockerfile.last();
    let labels: String = last
        .all("LABEL")
        .map(|l| l.args.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for key in [
        "title",
        "description",
        "licenses",
        "version",
        "revision",
        "created",
    ] {
        assert!(
            labels.contains(&format!("org.opencontainers.image.{key}=")),
            "missing OCI label org.opencontainers.image.{key} in: {labels}"
        );
    }
    let version_default = last
        .all("ARG")
        .find_map(|a| a.args.strip_prefix("VERSION="))
        .expect("an ARG VERSION with a default in the final stage");
    assert_eq!(
        version_default,
        env!("CARGO_PKG_VERSION"),
        "the image's default version label must follow Cargo.toml"
    );
    assert!(
        labels.contains(&format!(
            "org.opencontainers.image.licenses=\"{}\"",
            env!("CARGO_PKG_LICENSE")
        )),
        "the licence label must follow Cargo.toml"
    );
}

#[test]
fn dependencies_are_cooked_in_their_own_layer_with_the_build_profile() {
    let dockerfile = Dockerfile::load();
    let (build_stage, build) = dockerfile.build_command();
    let cook = build_stage
        .all("RUN")
        .find(|r| r.args.starts_with("cargo chef cook"))
        .expect("the build stage cooks the dependencies with cargo chef before building");
    let build_line = build_stage
        .all("RUN")
        .find(|r| r.args.starts_with("cargo build"))
        .unwrap()
        .line;
    assert!(cook.line < build_line, "cook before build");
    // Only the recipe is in the build stage when it cooks: the sources come after.
    let first_full_copy = build_stage
        .all("COPY")
        .find(|c| c.args == ". ." || c.args.ends_with(" ."))
        .expect("the build stage copies the sources");
    assert!(
        cook.line < first_full_copy.line && first_full_copy.line < build_line,
        "COPY . . must come between the cook and the build, or every source edit rebuilds the dependencies"
    );
    assert_eq!(
        profile_flags(&words(&cook.args)),
        profile_flags(&build),
        "`cargo chef cook` and `cargo build` must use the same profile flags"
    );
    let planner = dockerfile.stage("planner");
    assert!(
        planner
            .all("RUN")
            .any(|r| r.args.starts_with("cargo chef prepare")),
        "the planner stage prepares the recipe"
    );
    // The build stage's toolchain image and the runtime must be the same Debian release, or
    // the binary may need a newer glibc than the runtime has.
    let rust_args: String = dockerfile
        .global_args
        .iter()
        .map(|a| a.args.clone())
        .collect::<Vec<_>>()
        .join(" ");
    let debian = rust_args
        .split_whitespace()
        .find_map(|a| a.strip_prefix("DEBIAN_RELEASE="))
        .expect("ARG DEBIAN_RELEASE");
    let runtime_debian = match debian {
        "bookworm" => "debian12",
        "trixie" => "debian13",
        other => panic!("unknown Debian release {other}"),
    };
    assert!(
        dockerfile.last().base.contains(runtime_debian),
        "the runtime {} must match the build stage's Debian {debian}",
        dockerfile.last().base
    );
}

/// `1.94.1` as comparable numbers; a missing part counts as 0.
fn version_parts(v: &str) -> Vec<u32> {
    let mut parts: Vec<u32> = v
        .split('.')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("not a version: {v}")))
        .collect();
    parts.resize(3, 0);
    parts
}

#[test]
fn build_stage_toolchain_meets_the_crate_rust_version() {
    let dockerfile = Dockerfile::load();
    let rust = dockerfile
        .global_args
        .iter()
        .find_map(|a| a.args.strip_prefix("RUST_VERSION="))
        .expect("ARG RUST_VERSION before the first FROM");
    let chef = dockerfile.stage("chef");
    assert!(
        chef.base.starts_with("rust:${RUST_VERSION}-"),
        "the toolchain stage uses ARG RUST_VERSION: {}",
        chef.base
    );
    let needed = env!("CARGO_PKG_RUST_VERSION");
    assert!(!needed.is_empty(), "Cargo.toml declares a rust-version");
    // `rust:1.95` is the newest 1.95.x, so compare the image's minor version with the
    // requirement's, and its patch only when the image pins one.
    let (have, want) = (version_parts(rust), version_parts(needed));
    let pinned_patch = rust.split('.').count() == 3;
    let ok = if pinned_patch {
        have >= want
    } else {
        have[..2] >= want[..2]
    };
    assert!(
        ok,
        "the image builds with Rust {rust}, older than Cargo.toml's rust-version {needed}"
    );
}

#[test]
fn dockerignore_keeps_what_cargo_needs_and_drops_build_output() {
    let text = fs::read_to_string(repo().join(".dockerignore")).expect("read .dockerignore");
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["Cargo.toml", "Cargo.lock", "src", "build.rs", "benches"] {
        for p in &patterns {
            let p = p.trim_start_matches('/').trim_end_matches('/');
            assert!(
                !(p == needed || p == "*" || p == "**" || needed.starts_with(&format!("{p}/"))),
                ".dockerignore pattern {p} drops {needed}, which the build needs"
            );
        }
    }
    for dropped in ["target", ".git"] {
        assert!(
            patterns.iter().any(|p| p.trim_matches('/') == dropped),
            ".dockerignore must leave out {dropped}"
        );
    }
}

#[test]
fn build_stage_command_builds_a_working_exporter() {
    let dockerfile = Dockerfile::load();
    let (_, build) = dockerfile.build_command();
    assert_eq!(build[..2], ["cargo", "build"], "{build:?}");
    assert!(
        build.iter().any(|a| a == "--locked"),
        "the image builds with --locked, from the committed Cargo.lock: {build:?}"
    );
    // The very command of the Dockerfile, with this toolchain's cargo, in this repository.
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(&build[1..]);
    let out = run(
        cargo,
        &repo(),
        // A cold release build on a small machine takes a while.
        Duration::from_secs(60 * 60),
    );
    assert!(
        out.status.success(),
        "the Dockerfile's `{}` failed here:\n{}",
        build.join(" "),
        out.both()
    );

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_relative() { repo().join(t) } else { t })
        .unwrap_or_else(|| repo().join("target"));
    let binary = target.join(profile_dir(&build)).join(BIN);
    assert!(binary.is_file(), "{} was not built", binary.display());
    let mut version = Command::new(&binary);
    version.arg("--version");
    let version = run(version, &repo(), Duration::from_secs(30));
    assert!(
        version.status.success(),
        "{} --version failed:\n{}",
        binary.display(),
        version.both()
    );
    assert!(
        version.stdout.contains(env!("CARGO_PKG_VERSION")),
        "--version does not print {}:\n{}",
        env!("CARGO_PKG_VERSION"),
        version.both()
    );
}

#[test]
fn parser_reads_continuations_comments_and_stages() {
    let d = Dockerfile::parse(
        "ARG A=1\n# c\nFROM x:1 AS one\nRUN a \\\n  # inner\n  b\nFROM one\nUSER 1:1\n",
    );
    assert_eq!(d.global_args.len(), 1);
    assert_eq!(d.stages.len(), 2);
    assert_eq!(d.stage("one").instructions[0].args, "a b");
    assert_eq!(d.last().base, "one");
    assert_eq!(d.last().all("USER").next().unwrap().args, "1:1");
    assert_eq!(
        profile_flags(&words("cargo build --locked --release --bin x")),
        ["--locked", "--release"]
    );
    assert_eq!(profile_dir(&words("cargo build --profile dev")), "debug");
}
