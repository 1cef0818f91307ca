//! Memory pages for the write paths.
//!
//! `ingest` and `serve` allocate and free large buffers continually (requests' arenas,
//! rows, Parquet pages). Where the kernel backs the allocator's memory with transparent
//! huge pages, each fresh fault zeroes 2 MiB and may first compact memory synchronously.
//! Measured on 2 cores (docs/performance.md): protobuf ingest of 1M spans took 3.0–4.1 s
//! from run to run with them and 3.3–4.0 s without, peaking at 956 MB against 828 MB;
//! the OTLP receivers took 149k spans/s from 16 HTTP exporters with them and 204k
//! without. So those commands turn them off for the process; queries keep them.

/// Turns transparent huge pages off for this process, where the system allows it;
/// nothing else changes if it does not.
pub fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
}
