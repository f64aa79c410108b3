//! Where one delivery's time goes. The core marks the steps of a group message with spans named
//! `stage.*` (sender: seal + SQLite commit, hand to gossipsub; receiver: verify + decrypt,
//! SQLite commit); this layer times every such span from creation to close and keeps the
//! durations by name, for the bench to print a breakdown next to the latency. It enables only
//! those spans (trace level), so nothing else is logged and the rest of the code runs as in the
//! app.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::span;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Durations of the `stage.*` spans closed since the last [`Stages::take`], by name.
#[derive(Clone, Default)]
pub struct Stages(Arc<Mutex<BTreeMap<&'static str, Vec<Duration>>>>);

struct Opened(Instant);

impl Stages {
    /// Installs the timing layer as the process's subscriber.
    pub fn install() -> Self {
        let stages = Self::default();
        let layer = Timer(stages.clone())
            .with_filter(filter_fn(|m| m.is_span() && m.name().starts_with("stage.")));
        tracing_subscriber::registry().with(layer).init();
        stages
    }

    /// What was recorded so far, and a fresh start.
    pub fn take(&self) -> BTreeMap<&'static str, Vec<Duration>> {
        std::mem::take(&mut *self.0.lock().expect("stages"))
    }
}

struct Timer(Stages);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Timer {
    fn on_new_span(&self, _: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Opened(Instant::now()));
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(opened) = span.extensions().get::<Opened>().map(|o| o.0) else {
            return;
        };
        (self.0)
            .0
            .lock()
            .expect("stages")
            .entry(span.name())
            .or_default()
            .push(opened.elapsed());
    }
}
