//! Tempo's trace-id bloom filters (`bloom-0` … `bloom-(N-1)` beside `data.parquet`): a
//! block whose filter says no does not hold the trace, so trace lookups skip it.
//!
//! A trace id goes to shard FNV-1 (32-bit) of its 16 bytes, modulo the shard count.
//! A shard file holds, big-endian, the number of bits `m`, the number of probes `k`, the
//! bit count again, then the bits as 64-bit words. Probe `j` sets bit
//! `(h[j % 2] + j · h[2 + ((j + j % 2) % 4) / 2]) mod m`, where `h[0], h[1]` is
//! MurmurHash3 x64-128 of the id and `h[2], h[3]` the same of the id followed by a 1
//! byte.

use crate::error::{FormatError, Result};
use crate::ids::TraceId;

/// The shard file holding trace `id` in a block of `shards` shards (Tempo records 0 for
/// its former default of 10).
pub fn shard(id: &TraceId, shards: u32) -> u32 {
    let shards = if shards == 0 { 10 } else { shards };
    let mut hash: u32 = 0x811c_9dc5;
    for b in id {
        hash = hash.wrapping_mul(0x0100_0193);
        hash ^= u32::from(*b);
    }
    hash % shards
}

/// The name of shard file `shard`.
pub fn file_name(shard: u32) -> String {
    format!("bloom-{shard}")
}

/// Whether the filter in `file` may hold trace `id` (false: it surely does not).
pub fn may_contain(file: &[u8], id: &TraceId) -> Result<bool> {
    let word = |i: usize| -> Result<u64> {
        file.get(i * 8..i * 8 + 8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| FormatError::corrupt("Tempo bloom filter is cut short"))
    };
    let (m, k) = (word(0)?, word(1)?);
    // Tempo sizes filters for a 1% false-positive rate: a handful of probes.
    if m == 0 || word(2)? != m || !(1..=64).contains(&k) {
        return Err(FormatError::corrupt(
            "Tempo bloom filter has an invalid header",
        ));
    }
    if (file.len() as u64 / 8).saturating_sub(3) < m.div_ceil(64) {
        return Err(FormatError::corrupt("Tempo bloom filter is cut short"));
    }
    let (h0, h1) = murmur3_x64_128(id);
    let mut extended = [0u8; 17];
    extended[..16].copy_from_slice(id);
    extended[16] = 1;
    let (h2, h3) = murmur3_x64_128(&extended);
    let h = [h0, h1, h2, h3];
    for j in 0..k {
        let location = h[(j % 2) as usize]
            .wrapping_add(j.wrapping_mul(h[2 + (((j + j % 2) % 4) / 2) as usize]));
        let bit = location % m;
        if word(3 + (bit >> 6) as usize)? >> (bit & 63) & 1 == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// MurmurHash3, x64 128-bit variant, seed 0.
fn murmur3_x64_128(data: &[u8]) -> (u64, u64) {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let read = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let (mut h1, mut h2) = (0u64, 0u64);
    let blocks = data.len() / 16;
    for i in 0..blocks {
        let k1 = read(&data[i * 16..i * 16 + 8]);
        let k2 = read(&data[i * 16 + 8..i * 16 + 16]);
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = &data[blocks * 16..];
    let (mut k1, mut k2) = (0u64, 0u64);
    for (i, b) in tail.iter().enumerate() {
        if i < 8 {
            k1 ^= u64::from(*b) << (i * 8);
        } else {
            k2 ^= u64::from(*b) << ((i - 8) * 8);
        }
    }
    if tail.len() > 8 {
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    }
    if !tail.is_empty() {
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_the_reference_vectors() {
        // The reference implementation's results for "" and "hello", seed 0.
        assert_eq!(murmur3_x64_128(b""), (0, 0));
        assert_eq!(
            murmur3_x64_128(b"hello"),
            (0xcbd8_a7b3_41bd_9b02, 0x5b1e_906a_48ae_1d19)
        );
    }

    #[test]
    fn a_filter_answers_for_the_bits_it_holds() {
        // m = 64 bits, k = 3, all bits set: everything may be there; none set: nothing.
        let mut file = Vec::new();
        for w in [64u64, 3, 64, u64::MAX] {
            file.extend_from_slice(&w.to_be_bytes());
        }
        assert!(may_contain(&file, &[7; 16]).unwrap());
        file[24..].copy_from_slice(&0u64.to_be_bytes());
        assert!(!may_contain(&file, &[7; 16]).unwrap());
        assert!(may_contain(&file[..20], &[7; 16]).is_err());
        // A damaged header is refused, not followed.
        let mut huge = file.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(may_contain(&huge, &[7; 16]).is_err());
        huge[8..16].copy_from_slice(&3u64.to_be_bytes());
        huge[..8].copy_from_slice(&u64::MAX.to_be_bytes());
        huge[16..24].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(may_contain(&huge, &[7; 16]).is_err());
        assert!(shard(&[7; 16], 1) == 0 && shard(&[7; 16], 0) < 10);
    }
}
