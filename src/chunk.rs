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
        .map(|(o, l)| identify(data, o, l, judge))
        .collect()
}

/// `data` as one chunk (a file below CHUNK_FILES_FROM), identified as [`cut_segment`] identifies its
/// chunks; none when it is empty.
pub fn whole(data: &[u8], judge: bool) -> Vec<Cut> {
    if data.is_empty() {
        return Vec::new();
    }
    vec![identify(data, 0, data.len(), judge)]
}

/// The chunk of `len` bytes of `data` from `at`: its BLAKE3 and, when `judge`, whether it looks
/// incompressible.
fn identify(data: &[u8], at: usize, len: usize, judge: bool) -> Cut {
    let c = &data[at..at + len];
    (
        at,
        len,
        *blake3::hash(c).as_bytes(),
        judge && incompressible(c),
    )
}

/// Order-0 entropy (bits per byte) above which a chunk is taken as incompressible: compressed, encrypted
/// or media data measures 7.9–8.0; text 4–5.5; executables 5–6.5. An LZ codec gains nothing from byte
/// frequencies, only from repeats, and data this even rarely repeats inside a 4 MiB frame.
pub const INCOMPRESSIBLE_BITS: f64 = 7.9;

/// True when `data` looks incompressible (order-0 entropy above [`INCOMPRESSIBLE_BITS`]). Chunks under
/// 4 KiB are too short to judge and count as compressible.
///
/// The same answer as counting every byte ([`entropy_bits`]), most often from half of them: after the
/// first half, [`entropy_bound`] is the most the whole chunk's entropy could still be, whatever the second
/// half holds; text and code come out well below the threshold there (BENCHMARKS.md §12.1).
pub fn incompressible(data: &[u8]) -> bool {
    if data.len() < 4096 {
        return false;
    }
    let mut t = [[0u32; 256]; 4];
    let half = data.len() / 2 / 4 * 4;
    count(&mut t, &data[..half]);
    // A margin far above the float error of either sum, so that the early answer is the full one.
    if entropy_bound(&merge(&t), data.len() as u64) < INCOMPRESSIBLE_BITS - 1e-6 {
        return false;
    }
    count(&mut t, &data[half..]);
    bits(&merge(&t), data.len()) > INCOMPRESSIBLE_BITS
}

/// Order-0 entropy of `data` in bits per byte, from every byte.
pub fn entropy_bits(data: &[u8]) -> f64 {
    let mut t = [[0u32; 256]; 4];
    count(&mut t, data);
    bits(&merge(&t), data.len())
}

/// Adds `data`'s bytes to four tables, so that runs of one byte do not serialize on one counter.
fn count(t: &mut [[u32; 256]; 4], data: &[u8]) {
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
}

fn merge(t: &[[u32; 256]; 4]) -> [u64; 256] {
    std::array::from_fn(|i| {
        u64::from(t[0][i]) + u64::from(t[1][i]) + u64::from(t[2][i]) + u64::from(t[3][i])
    })
}

/// Entropy in bits per byte of `n` bytes counted in `c`.
fn bits(c: &[u64; 256], n: usize) -> f64 {
    let n = n as f64;
    c.iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// The largest entropy (bits per byte) that `n` bytes can have when `c` counts the first of them: the
/// rest raise the smallest counts to one level `L` (water-filling: the maximum of a concave function
/// with each count at least what it is now), so the counts above `L` stay and the others become `L`.
/// Real-valued, so an upper bound of every whole-byte outcome.
fn entropy_bound(c: &[u64; 256], n: u64) -> f64 {
    let n_f = n as f64;
    // Counts above the level stay; the level falls as more of them are set apart, so iterate until none
    // more is above it.
    let mut fixed = [false; 256];
    let (mut kept, mut kept_sum) = (0usize, 0u64);
    loop {
        let level = (n - kept_sum) as f64 / (256 - kept) as f64;
        let mut more = false;
        for (i, &ci) in c.iter().enumerate() {
            if !fixed[i] && ci as f64 > level {
                fixed[i] = true;
                kept += 1;
                kept_sum += ci;
                more = true;
            }
        }
        if !more || kept == 256 {
            let h = |x: f64| {
                if x > 0.0 {
                    -(x / n_f) * (x / n_f).log2()
                } else {
                    0.0
                }
            };
            let stay: f64 = (0..256).filter(|&i| fixed[i]).map(|i| h(c[i] as f64)).sum();
            let level = if kept == 256 {
                0.0
            } else {
                (n - kept_sum) as f64 / (256 - kept) as f64
            };
            return stay + (256 - kept) as f64 * h(level);
        }
    }
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

    /// The early answer (from half the bytes) must be the full count's, on text, on data near the
    /// threshold, and where the first half alone looks compressible but the whole does not.
    #[test]
    fn early_answer_is_the_full_count() {
        let full = |d: &[u8]| entropy_bits(d) > INCOMPRESSIBLE_BITS;
        let random = noise(7, 1 << 17);
        let mut cases: Vec<Vec<u8>> = Vec::new();
        cases.push(b"fn main() { println!(\"hello\"); }\n".repeat(3000));
        cases.push(random.clone());
        // Byte values drawn from k of 256: entropy about log2(k), around 7.9 (= log2 239) for k near 239.
        for k in [200u32, 236, 238, 239, 240, 242, 250, 256] {
            cases.push(
                random
                    .iter()
                    .map(|&b| (u32::from(b) * k / 256) as u8)
                    .collect(),
            );
        }
        // Two halves of 7 bits each over disjoint values: the whole is 8 bits.
        let lo: Vec<u8> = random[..1 << 16].iter().map(|b| b & 0x7f).collect();
        let hi: Vec<u8> = random[1 << 16..].iter().map(|b| b | 0x80).collect();
        cases.push([lo.clone(), hi].concat());
        // Text, then noise: compressible first half, noisy second.
        cases.push([b"abcabc ".repeat(9000), random[..1 << 16].to_vec()].concat());
        cases.push([random[..1 << 16].to_vec(), b"abcabc ".repeat(9000)].concat());
        for len in [4096, 4097, 4099, 65_535] {
            cases.push(random[..len].to_vec());
            cases.push(lo[..len].to_vec());
        }
        let mut seen = [0; 2];
        for (i, d) in cases.iter().enumerate() {
            assert_eq!(
                incompressible(d),
                full(d),
                "case {i}: {} bits",
                entropy_bits(d)
            );
            seen[usize::from(full(d))] += 1;
        }
        assert!(
            seen[0] >= 5 && seen[1] >= 5,
            "both answers tested: {seen:?}"
        );
        let disjoint = &cases[10];
        assert!(
            full(disjoint),
            "halves of 7 bits over disjoint values make 8"
        );
        // The bound is an upper bound: never below the entropy of the whole, from any prefix.
        for d in &cases {
            let mut t = [[0u32; 256]; 4];
            count(&mut t, &d[..d.len() / 3]);
            assert!(entropy_bound(&merge(&t), d.len() as u64) >= entropy_bits(d) - 1e-9);
        }
    }

    /// A whole file is one chunk identified as the cutter identifies chunks; nothing for no bytes.
    #[test]
    fn whole_is_one_identified_chunk() {
        let random = noise(5, 100_000);
        let w = whole(&random, true);
        assert_eq!(
            w,
            vec![(0, random.len(), *blake3::hash(&random).as_bytes(), true)]
        );
        let text = b"fn main() {}\n".repeat(9000);
        assert!(!whole(&text, true)[0].3);
        assert!(!whole(&random, false)[0].3, "judged only when asked");
        assert!(whole(&[], true).is_empty());
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
