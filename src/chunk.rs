//! Content-defined chunking (FastCDC 2020): identical runs of bytes inside different files or versions get
//! identical chunk boundaries, so chunk-level dedup finds them.

/// A chunk of a data segment: offset, length, BLAKE3, and whether it looks incompressible.
pub type Cut = (usize, usize, [u8; 32], bool);

/// Cut points of `data` as (offset, length) pairs covering it exactly. `min`, `avg` and `max` come from
/// config (validated there against FastCDC's limits).
pub fn cut(data: &[u8], min: u32, avg: u32, max: u32) -> Vec<(usize, usize)> {
    if data.is_empty() {
        return Vec::new();
    }
    if data.len() <= min as usize {
        return vec![(0, data.len())];
    }
    fastcdc::v2020::FastCDC::new(data, min, avg, max)
        .map(|c| (c.offset, c.length))
        .collect()
}

/// Cuts one data segment and identifies its chunks: each chunk's BLAKE3 and, when `judge`, whether it
/// looks incompressible ([`incompressible`]; false otherwise).
pub fn cut_segment(data: &[u8], min: u32, avg: u32, max: u32, judge: bool) -> Vec<Cut> {
    cut(data, min, avg, max)
        .into_iter()
        .map(|(o, l)| {
            let c = &data[o..o + l];
            let raw = judge && incompressible(c);
            (o, l, *blake3::hash(c).as_bytes(), raw)
        })
        .collect()
}

/// Order-0 entropy (bits per byte) above which a chunk is taken as incompressible: compressed, encrypted
/// or media data measures 7.9–8.0; text 4–5.5; executables 5–6.5. An LZ codec gains nothing from byte
/// frequencies, only from repeats, and data this even rarely repeats inside a 4 MiB frame.
pub const INCOMPRESSIBLE_BITS: f64 = 7.9;

/// True when `data` looks incompressible (order-0 entropy above [`INCOMPRESSIBLE_BITS`]). Chunks under
/// 4 KiB are too short to judge and count as compressible.
pub fn incompressible(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    // Four tables so that runs of one byte do not serialize on one counter.
    let mut t = [[0u32; 256]; 4];
    let mut quads = data.chunks_exact(4);
    for q in &mut quads {
        t[0][q[0] as usize] += 1;
        t[1][q[1] as usize] += 1;
        t[2][q[2] as usize] += 1;
        t[3][q[3] as usize] += 1;
    }
    for &b in quads.remainder() {
        t[0][b as usize] += 1;
    }
    let n = data.len() as f64;
    let bits: f64 = (0..256)
        .map(|i| t[0][i] + t[1][i] + t[2][i] + t[3][i])
        .filter(|&c| c > 0)
        .map(|c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    bits > INCOMPRESSIBLE_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64 bytes: deterministic, incompressible.
    fn noise(mut x: u64, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn entropy_tells_random_from_text() {
        let random = noise(99, 65536);
        assert!(incompressible(&random));
        assert!(!incompressible(&random[..4095]), "too short to judge");
        let text = b"fn main() { println!(\"hello\"); }\n".repeat(2000);
        assert!(!incompressible(&text));
        // Random bytes drawn from 128 values: 7 bits a byte, below the threshold.
        let half: Vec<u8> = random.iter().map(|b| b & 0x7f).collect();
        assert!(!incompressible(&half));
    }

    #[test]
    fn cuts_cover_input_and_resync_after_an_insert() {
        let data = noise(12345, 1 << 20);
        let a = cut(&data, 4096, 16384, 65536);
        let mut pos = 0;
        for &(o, l) in &a {
            assert_eq!(o, pos);
            pos += l;
        }
        assert_eq!(pos, data.len());
        let mut shifted = b"inserted".to_vec();
        shifted.extend_from_slice(&data);
        let b = cut(&shifted, 4096, 16384, 65536);
        let ends_a: std::collections::HashSet<_> = a.iter().map(|(o, l)| o + l).collect();
        let common = b
            .iter()
            .filter(|(o, l)| ends_a.contains(&(o + l - 8)))
            .count();
        assert!(
            common * 10 >= a.len() * 9,
            "only {common} of {} boundaries resynced",
            a.len()
        );
    }
}
