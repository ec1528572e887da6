//! Content-defined chunking (FastCDC 2020): identical runs of bytes inside different files or versions get
//! identical chunk boundaries, so chunk-level dedup finds them.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_cover_input_and_resync_after_an_insert() {
        let mut x = 12345u64;
        let data: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
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
