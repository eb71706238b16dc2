//! Wall-clock time of the server's tracing spans, by span name: where a request's time goes,
//! waits included (a lock, the database's writer, a child process), which an on-CPU profile does
//! not show. A benchmark installs [`SpanTimes`] as its subscriber (`--spans`), runs its load,
//! and prints [`SpanTimes::table`]. Only spans of amika's own crates at `debug` level and above
//! are timed; each from its creation to its close (so an `async fn`'s span covers its awaits).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::span;
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::Summary;

/// Durations of closed spans, by `target::name`.
#[derive(Debug, Clone, Default)]
pub struct SpanTimes(Arc<Mutex<BTreeMap<String, Vec<Duration>>>>);

/// When a span was created (kept in its extensions).
struct Opened(Instant);

impl SpanTimes {
    /// Install a collector of amika's spans as this process's global subscriber.
    pub fn install() -> anyhow::Result<SpanTimes> {
        let times = SpanTimes::default();
        let filter = tracing_subscriber::filter::filter_fn(|meta| {
            meta.is_span()
                && meta.target().starts_with("amika")
                && *meta.level() <= tracing::Level::DEBUG
        });
        let subscriber = tracing_subscriber::registry().with(times.clone().with_filter(filter));
        tracing::subscriber::set_global_default(subscriber)?;
        Ok(times)
    }

    /// Forget what was collected so far (e.g. the warm-up's spans).
    pub fn clear(&self) {
        self.0.lock().expect("span times").clear();
    }

    /// `span | n | p50 | p95 | p99 | total s`, the largest total first.
    pub fn table(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let all = self.0.lock().expect("span times");
        let mut rows: Vec<(Duration, Vec<String>)> = all
            .iter()
            .map(|(name, samples)| {
                let total: Duration = samples.iter().sum();
                let mut cells = vec![format!("`{name}`")];
                cells.extend(Summary::of(samples).ms_cells());
                cells.push(format!("{:.1} s", total.as_secs_f64()));
                (total, cells)
            })
            .collect();
        rows.sort_by_key(|(total, _)| std::cmp::Reverse(*total));
        let headers = vec![
            "span (wall time, waits included)",
            "n",
            "p50",
            "p95",
            "p99",
            "sum",
        ];
        (headers, rows.into_iter().map(|(_, cells)| cells).collect())
    }
}

impl<S> Layer<S> for SpanTimes
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Opened(Instant::now()));
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(opened) = span.extensions().get::<Opened>().map(|o| o.0) else {
            return;
        };
        let meta = span.metadata();
        let name = format!("{}::{}", meta.target(), meta.name());
        self.0
            .lock()
            .expect("span times")
            .entry(name)
            .or_default()
            .push(opened.elapsed());
    }
}
