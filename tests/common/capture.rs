//! A capturing `tracing` subscriber for tests: every event (level, target, message, fields)
//! and every span (name and fields, at creation and on `record`) as one line of text,
//! installed as the thread's default until dropped.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// Records every event (level, target, message and fields) and every span (name and fields,
/// at creation and on `record`) as one line of text.
#[derive(Clone, Default)]
pub struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next_span: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
    /// What a formatter prints for an error field: its text and the text of its whole
    /// source chain.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.0, " {}={}", field.name(), value);
        let mut source = value.source();
        while let Some(s) = source {
            let _ = write!(self.0, " (caused by: {s})");
            source = s.source();
        }
    }
}

impl Capture {
    fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
    }
}

impl Subscriber for Capture {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = format!(
            "span {} {}:",
            span.metadata().target(),
            span.metadata().name()
        );
        span.record(&mut Fields(&mut line));
        self.push(line);
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, values: &SpanRecord<'_>) {
        let mut line = String::from("span record:");
        values.record(&mut Fields(&mut line));
        self.push(line);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut line = format!("event {} {}:", meta.level(), meta.target());
        event.record(&mut Fields(&mut line));
        self.push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The capture installed as this thread's subscriber until it is dropped.
pub struct Logs {
    capture: Capture,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Logs {
    pub fn install() -> Self {
        let capture = Capture::default();
        let guard = tracing::subscriber::set_default(capture.clone());
        Logs {
            capture,
            _guard: guard,
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.capture.lines.lock().unwrap().clone()
    }

    /// How many captured lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// The site whose message is `needle` fired at least once (the test reached it).
    #[track_caller]
    pub fn expect(&self, needle: &str) {
        assert!(
            self.count(needle) > 0,
            "the log site {needle:?} never fired; captured: {:#?}",
            self.lines()
        );
    }
}
