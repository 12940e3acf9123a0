//! Keeping freed memory in the process while candle trains on the CPU.
//!
//! candle allocates a fresh buffer for every tensor operation's output.
//! glibc's malloc serves blocks above its mmap threshold (128 KiB, raised
//! adaptively to at most 32 MiB) with a fresh `mmap` and gives them back on
//! free, and trims the heap top past 128 KiB, so each step's activations are
//! faulted in page by page again, from every thread at once. Raising both
//! thresholds keeps the pages: one epoch of the Beauty ranker went from
//! 30.8 s to 12.4 s (33 s of system time to 1.8 s) with identical results.

/// glibc's `M_TRIM_THRESHOLD`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const M_TRIM_THRESHOLD: i32 = -1;
/// glibc's `M_MMAP_THRESHOLD`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const M_MMAP_THRESHOLD: i32 = -3;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn mallopt(param: i32, value: i32) -> i32;
    fn malloc_trim(pad: usize) -> i32;
}

/// Hands free heap pages back to the system (on glibc; elsewhere it does
/// nothing). Opening a database decodes every record into buffers that are
/// dropped once the index is built; glibc keeps most of them resident
/// otherwise (1M items: 437 MB resident after open, 253 MB after this).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused heap memory; it takes glibc's own locks.
    unsafe {
        malloc_trim(0);
    }
}

/// Drops `value` on a thread of its own, then hands the freed pages back
/// (see [`release_free_memory`]), so the caller need not wait for a large
/// structure to be freed. Where no thread can be started it is dropped here.
pub fn free_in_background<T: Send + 'static>(value: T) {
    let freeing = std::thread::Builder::new()
        .name("adasid-free".into())
        .spawn(move || {
            drop(value);
            release_free_memory();
        });
    if freeing.is_err() {
        // The closure, and `value` with it, is dropped by now.
        release_free_memory();
    }
}

/// Serves blocks up to 256 MiB from the heap and keeps up to 1 GiB of freed
/// heap top in the process (on glibc; elsewhere it does nothing). A process
/// setting: call it once, early, in a program that trains. Returns whether
/// both settings took.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; glibc applies
        // them under its own lock and rejects values out of range.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 256 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn releasing_free_memory_keeps_live_data() {
        let kept: Vec<Vec<u8>> = (0..1000).map(|i| vec![i as u8; 4096]).collect();
        drop((0..1000).map(|_| vec![1u8; 4096]).collect::<Vec<_>>());
        super::release_free_memory();
        assert!(
            kept.iter()
                .enumerate()
                .all(|(i, v)| v.iter().all(|&b| b == i as u8))
        );
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_both_settings() {
        assert!(super::keep_freed_memory());
    }
}
