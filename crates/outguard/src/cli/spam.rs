//! `outguard spam …`: scan / explain / train / eval / learn over the `outguard-spam` library.
//! Output: `--json` prints one JSON object per file per line for `scan`, the report object for
//! `eval`; otherwise a readable line or table. Exit codes: 0 ok, 1 = `scan --exit-code` found
//! a message called spam (or `--peer-line` saw spam), 2 = a file could not be read.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use outguard_spam::{Engine, Overlay, ScanContext, Verdict};

#[derive(Debug, clap::Subcommand)]
pub enum SpamCmd {
    /// Scan message files (`-` = stdin) and print a verdict with reasons for each.
    Scan {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Per-tenant overlay file learned with `spam learn`.
        #[arg(long)]
        overlay: Option<PathBuf>,
        /// Exit 1 if any message is called spam (suspicious or spam). A file that cannot be
        /// read is bad usage: it is named on stderr, the others are still scanned, exit 64.
        #[arg(long)]
        exit_code: bool,
        /// One line `<score> <spam|ham> TAGS…` per file (bench/peer_scan.py's external format).
        #[arg(long, hide = true)]
        peer_line: bool,
    },
    /// Show every signal tag and weight, and the strongest words, for one message.
    Explain {
        file: PathBuf,
        #[arg(long)]
        overlay: Option<PathBuf>,
    },
    /// Train a model on the `train` split of one or more corpora (manifest.csv) and write it.
    /// Default thresholds are chosen on validation data only (a corpus's `validation` split,
    /// else a slice of its `train` split); `test` is never read.
    Train {
        #[arg(long, required = true)]
        corpus: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Evaluate the model on each corpus's held-out split (`test`, else `validation`); each
    /// corpus is reported separately, per folder / source tag and per source group.
    Eval {
        /// Corpus directories (holding manifest.csv); same as `--corpus`.
        dirs: Vec<PathBuf>,
        #[arg(long)]
        corpus: Vec<PathBuf>,
    },
    /// Learn messages as spam or ham into a per-tenant (or global) overlay.
    Learn {
        #[arg(long, conflicts_with = "ham", required_unless_present = "ham")]
        spam: bool,
        #[arg(long)]
        ham: bool,
        #[arg(long)]
        tenant: Option<String>,
        /// Overlay file; without it the overlay kept in the store is updated (the relay uses it).
        #[arg(long)]
        overlay: Option<PathBuf>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(cmd: SpamCmd, json: bool, model_override: Option<&Path>) -> anyhow::Result<i32> {
    let engine = || -> anyhow::Result<Engine> {
        match model_override {
            Some(p) => {
                let b =
                    std::fs::read(p).with_context(|| format!("reading model {}", p.display()))?;
                Ok(Engine::from_model_bytes(&b)
                    .with_context(|| format!("loading model {}", p.display()))?)
            }
            None => Ok(Engine::builtin()),
        }
    };
    match cmd {
        SpamCmd::Scan {
            files,
            overlay,
            exit_code,
            peer_line,
        } => {
            let overlay = load_overlay(overlay.as_deref())?;
            scan(
                &engine()?,
                &files,
                overlay.as_ref(),
                json,
                exit_code || peer_line,
                peer_line,
            )
        }
        SpamCmd::Explain { file, overlay } => {
            let overlay = load_overlay(overlay.as_deref())?;
            let raw = read_input(&file)?;
            let e = engine()?.explain(&raw, &ScanContext::default(), overlay.as_ref());
            if json {
                out!("{}", serde_json::to_string(&e)?);
            } else {
                out_text!("{e}");
            }
            Ok(0)
        }
        SpamCmd::Train { corpus, out } => {
            let corpora = corpus
                .iter()
                .map(|d| outguard_spam::corpus::Corpus::open(d))
                .collect::<Result<Vec<_>, _>>()?;
            let bytes = outguard_spam::corpus::train_corpora(&corpora)?;
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {} ({} bytes)", out.display(), bytes.len());
            Ok(0)
        }
        SpamCmd::Eval { dirs, corpus } => {
            let dirs: Vec<PathBuf> = dirs.into_iter().chain(corpus).collect();
            if dirs.is_empty() {
                return Err(super::UsageError("spam eval: name a corpus directory".into()).into());
            }
            let engine = engine()?;
            let reports = dirs
                .iter()
                .map(|d| outguard_spam::corpus::eval(&engine, d))
                .collect::<Result<Vec<_>, _>>()?;
            if json {
                // One corpus: its report object (as before); several: an array of them.
                match reports.as_slice() {
                    [one] => out!("{}", serde_json::to_string(one)?),
                    all => out!("{}", serde_json::to_string(all)?),
                }
            } else {
                for r in &reports {
                    out_text!("{r}");
                }
            }
            Ok(0)
        }
        SpamCmd::Learn {
            spam,
            ham: _,
            tenant,
            overlay: Some(path),
            files,
        } => learn(&engine()?, spam, tenant, path, &files, json),
        SpamCmd::Learn { overlay: None, .. } => {
            anyhow::bail!(
                "spam learn without --overlay updates the store: run through the CLI entry point"
            )
        }
    }
}

fn read_input(p: &Path) -> anyhow::Result<Vec<u8>> {
    if p == Path::new("-") {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .context("reading stdin")?;
        return Ok(v);
    }
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

fn load_overlay(p: Option<&Path>) -> anyhow::Result<Option<Overlay>> {
    let Some(p) = p else { return Ok(None) };
    let b = std::fs::read(p).with_context(|| format!("reading overlay {}", p.display()))?;
    Ok(Some(Overlay::from_bytes(&b).with_context(|| {
        format!("loading overlay {}", p.display())
    })?))
}

fn scan(
    engine: &Engine,
    files: &[PathBuf],
    overlay: Option<&Overlay>,
    json: bool,
    exit_code: bool,
    peer_line: bool,
) -> anyhow::Result<i32> {
    let ctx = ScanContext::default();
    let mut code = 0;
    for f in files {
        let raw = match read_input(f) {
            Ok(r) => r,
            Err(e) => {
                // SPEC §5 exit codes: 64 bad usage (a named file that cannot be read).
                eprintln!("outguard: {e:#}");
                code = 64;
                continue;
            }
        };
        let v = engine.scan_with_overlay(&raw, &ctx, overlay);
        if v.class.is_spam() && exit_code && code == 0 {
            code = 1;
        }
        out!(
            "{}",
            format_verdict(&f.display().to_string(), &v, json, peer_line)
        );
    }
    Ok(code)
}

/// One output line for a scanned file.
pub fn format_verdict(file: &str, v: &Verdict, json: bool, peer_line: bool) -> String {
    if peer_line {
        let tags: Vec<&str> = v
            .reasons
            .iter()
            .filter(|r| r.weight != 0.0)
            .map(|r| r.tag.as_str())
            .collect();
        let verdict = if v.class.is_spam() { "spam" } else { "ham" };
        return format!("{:.3} {verdict} {}", v.score, tags.join(" "));
    }
    if json {
        return serde_json::json!({
            "file": file,
            "score": v.score,
            "class": v.class.as_str(),
            "reasons": v.reasons.iter().map(|r| serde_json::json!({"tag": r.tag, "weight": r.weight, "detail": r.detail})).collect::<Vec<_>>(),
        })
        .to_string();
    }
    let top: Vec<String> = v
        .reasons
        .iter()
        .take(4)
        .map(|r| format!("{} {:+.2}", r.tag, r.weight))
        .collect();
    format!(
        "{file}: {} score {:.2} ({})",
        v.class.as_str(),
        v.score,
        top.join(", ")
    )
}

/// The store key of a tenant's (or the global) learned overlay; the relay scans with it.
pub fn overlay_key(tenant: Option<&str>) -> String {
    format!("spam-overlay:{}", tenant.unwrap_or("global"))
}

/// `spam learn` without `--overlay`: update the overlay kept in the store, which every node of a
/// running relay picks up within seconds.
pub async fn learn_into_store(
    store: &outguard_store::Store,
    cmd: SpamCmd,
    json: bool,
    model_override: Option<&Path>,
) -> anyhow::Result<i32> {
    let SpamCmd::Learn {
        spam,
        tenant,
        files,
        ..
    } = cmd
    else {
        anyhow::bail!("learn_into_store takes a learn command");
    };
    let engine = match model_override {
        Some(p) => Engine::from_model_bytes(
            &std::fs::read(p).with_context(|| format!("reading model {}", p.display()))?,
        )?,
        None => Engine::builtin(),
    };
    if let Some(t) = &tenant
        && store.tenant(t).await?.is_none()
    {
        return Err(super::UsageError(format!("--tenant: no tenant named {t}")).into());
    }
    let key = overlay_key(tenant.as_deref());
    let mut o = match store.get_blob(&key).await? {
        Some(b) => Overlay::from_bytes(&b).with_context(|| format!("loading overlay {key}"))?,
        None => Overlay::new(),
    };
    let mut changed = 0;
    for f in &files {
        let raw = read_input(f)?;
        changed += usize::from(o.learn(&engine, &raw, spam));
    }
    store.put_blob(&key, &o.to_bytes()).await?;
    report_learn(&key, files.len(), changed, o.counts(), spam, json);
    Ok(0)
}

fn report_learn(
    place: &str,
    n: usize,
    changed: usize,
    (ns, nh): (u32, u32),
    spam: bool,
    json: bool,
) {
    if json {
        out!(
            "{}",
            serde_json::json!({"overlay": place, "learned": n, "changed": changed, "spam_total": ns, "ham_total": nh})
        );
    } else {
        let what = if spam { "spam" } else { "ham" };
        out!(
            "learned {n} message(s) as {what} into {place} ({changed} moved; totals: {ns} spam, {nh} ham)"
        );
    }
}

fn learn(
    engine: &Engine,
    spam: bool,
    _tenant: Option<String>,
    path: PathBuf,
    files: &[PathBuf],
    json: bool,
) -> anyhow::Result<i32> {
    let mut o = match std::fs::read(&path) {
        Ok(b) => Overlay::from_bytes(&b)
            .with_context(|| format!("loading overlay {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Overlay::new(),
        Err(e) => return Err(e).with_context(|| format!("reading overlay {}", path.display())),
    };
    let mut changed = 0;
    for f in files {
        let raw = read_input(f)?;
        changed += usize::from(o.learn(engine, &raw, spam));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, o.to_bytes()).with_context(|| format!("writing {}", path.display()))?;
    report_learn(
        &path.display().to_string(),
        files.len(),
        changed,
        o.counts(),
        spam,
        json,
    );
    Ok(0)
}
