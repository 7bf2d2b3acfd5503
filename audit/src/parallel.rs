//! Data parallelism for large inputs: `map` over chunks on scoped std threads (one per core),
//! keeping input order. Small inputs run on the calling thread.

use std::num::NonZeroUsize;

/// Below this many items, threads cost more than they save.
const MIN_PARALLEL: usize = 512;

/// Maps `f` over `items` in order, in parallel chunks; `on_chunk(done)` is called after each
/// chunk with the number of items finished so far (for progress reporting).
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
    on_chunk: &(dyn Fn(usize) + Sync),
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(16);
    if items.len() < MIN_PARALLEL || threads == 1 {
        let out: Vec<R> = items.iter().map(&f).collect();
        on_chunk(items.len());
        return out;
    }
    // Several chunks per thread so progress advances smoothly.
    let chunk = items.len().div_ceil(threads * 8).max(1);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let chunks: Vec<&[T]> = items.chunks(chunk).collect();
    let mut results: Vec<Option<Vec<R>>> = Vec::new();
    results.resize_with(chunks.len(), || None);
    let slots: Vec<std::sync::Mutex<Option<Vec<R>>>> =
        results.into_iter().map(std::sync::Mutex::new).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(part) = chunks.get(i) else { break };
                    let out: Vec<R> = part.iter().map(&f).collect();
                    let n = done.fetch_add(part.len(), std::sync::atomic::Ordering::Relaxed)
                        + part.len();
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(out);
                    }
                    on_chunk(n);
                }
            });
        }
    });
    slots
        .into_iter()
        .flat_map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_and_reports_all_items() {
        let items: Vec<u64> = (0..10_000).collect();
        let max = std::sync::atomic::AtomicUsize::new(0);
        let out = super::map(&items, |x| x * 2, &|n| {
            max.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        assert_eq!(max.into_inner(), 10_000);
    }
}
