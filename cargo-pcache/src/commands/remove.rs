//! `cargo pcache flush`, `clear` and `delete`: plan what to remove, report
//! it, and (unless `--dry-run`) apply the plan.

use std::time::Duration;

use anyhow::{Result, bail};
use pcache_core::{Plan, Removed};

use super::Ctx;
use crate::caches::Cache;
use crate::output;

/// What to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// Expired entries, with this expiry instead of the recorded one.
    Flush(Option<Duration>),
    Clear,
    Delete,
}

impl Verb {
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Verb::Flush(_) => ("Flushed", "flush"),
            Verb::Clear => ("Cleared", "clear"),
            Verb::Delete => ("Deleted", "delete"),
        }
    }
}

struct Planned {
    cache: Cache,
    plan: Plan,
}

pub(crate) fn run(ctx: &mut Ctx<'_>, verb: Verb, caches: Vec<Cache>, dry_run: bool) -> Result<()> {
    let mut planned = Vec::with_capacity(caches.len());
    for cache in caches {
        let store = cache.store().with_expiry(ctx.expiry_of(&cache));
        let plan = match verb {
            Verb::Flush(expiry) => store.plan_flush(expiry),
            Verb::Clear | Verb::Delete => store.plan_clear(),
        };
        match plan {
            Ok(plan) => planned.push(Planned { cache, plan }),
            Err(e) => ctx.warn(&e.to_string()),
        }
    }
    let (done, infinitive) = verb.words();
    if dry_run {
        let mut total = Removed::default();
        for p in &planned {
            let would = p.plan.would_remove();
            report_cache(ctx, &p.cache, would);
            total += would;
        }
        return summary(
            ctx,
            verb,
            &format!("Would {infinitive}"),
            total,
            planned.len(),
        );
    }

    let bar = ctx.style.progress_bar(
        planned.iter().map(|p| p.plan.entries.len() as u64).sum(),
        done,
    );
    let mut total = Removed::default();
    let mut failures = Vec::new();
    for p in &planned {
        let store = p.cache.store();
        let result = match verb {
            Verb::Delete => {
                bar.inc(p.plan.entries.len() as u64, ctx.err);
                store.delete().inspect(|_| remove_if_empty(&p.cache))
            }
            _ => store.apply_with(&p.plan, || bar.inc(1, ctx.err)),
        };
        match result {
            Ok(removed) => {
                report_cache(ctx, &p.cache, removed);
                total += removed;
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    bar.finish(ctx.err);
    summary(ctx, verb, done, total, planned.len())?;
    match failures.as_slice() {
        [] => Ok(()),
        [one] => bail!("{one}"),
        many => bail!(
            "{} caches could not be changed:\n  {}",
            many.len(),
            many.join("\n  ")
        ),
    }
}

/// A package directory left empty by `delete` goes too.
fn remove_if_empty(cache: &Cache) {
    if let Some(package_dir) = cache.path.parent() {
        // Fails, harmlessly, when other caches remain.
        let _ = std::fs::remove_dir(package_dir);
    }
}

fn report_cache(ctx: &mut Ctx<'_>, cache: &Cache, removed: Removed) {
    if ctx.style.verbose && !ctx.style.quiet {
        let _ = writeln!(
            ctx.out,
            "  {}  {}  {} entries  {}",
            cache.package,
            output::display_name(&cache.name()),
            removed.entries,
            output::size(removed.bytes)
        );
    }
}

fn summary(ctx: &mut Ctx<'_>, verb: Verb, done: &str, total: Removed, caches: usize) -> Result<()> {
    if ctx.style.quiet {
        return Ok(());
    }
    let caches_word = if caches == 1 { "cache" } else { "caches" };
    let line = match verb {
        Verb::Delete => format!(
            "{done} {caches} {caches_word} ({} entries, {})",
            total.entries,
            output::size(total.bytes)
        ),
        _ => format!(
            "{done} {} entries ({}) from {caches} {caches_word}",
            total.entries,
            output::size(total.bytes)
        ),
    };
    writeln!(ctx.out, "{line}")?;
    if total.leftovers > 0 && ctx.style.verbose {
        writeln!(
            ctx.out,
            "  and {} stale lock or temporary files",
            total.leftovers
        )?;
    }
    Ok(())
}
