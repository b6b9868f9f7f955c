//! Bucket diagnostics: `bucket_count`, `empty_bucket_count`, `sparse_bucket_count`.
//!
//! A ring of `max(ceil(latency / span), 10)` bucket slots counts processed records. When a
//! record lands in a later bucket the window slides one bucket at a time, and whenever it is full
//! its oldest bucket is finished: counted, and judged empty or sparse against the window's
//! average. At the end of each request every bucket but the newest is finished too (they stay in
//! the window). A bucket is finished at most once. Rules and numbers: `post-data.md` §4.

/// Buckets finished since the counts last took them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Finished {
    pub buckets: u64,
    pub empty: u64,
    pub sparse: u64,
}

#[derive(Clone, Debug)]
pub struct BucketDiagnostics {
    span_ms: i64,
    slots: Vec<u64>,
    /// Start of the newest bucket in the window, and its slot; None before the first record.
    newest: Option<(i64, usize)>,
    /// Start of the oldest bucket in the window, and its slot.
    oldest: (i64, usize),
    window_sum: u64,
    /// Gaps longer than this many buckets are counted arithmetically instead of walked.
    max_walk: i64,
    last_finished_start: Option<i64>,
    pub pending: Finished,
    /// Kept for the whole open session (Elasticsearch never resets them while open).
    pub latest_empty_start: Option<i64>,
    pub latest_sparse_start: Option<i64>,
}

impl BucketDiagnostics {
    pub fn new(span_ms: i64, latency_ms: i64) -> Self {
        let ceil = (latency_ms + span_ms - 1) / span_ms;
        let size = ceil.max(10) as usize;
        BucketDiagnostics {
            span_ms,
            slots: vec![0; size],
            newest: None,
            oldest: (0, 0),
            window_sum: 0,
            max_walk: 4 * size as i64,
            last_finished_start: None,
            pending: Finished::default(),
            latest_empty_start: None,
            latest_sparse_start: None,
        }
    }

    #[inline]
    fn bucket_start(&self, t_ms: i64) -> i64 {
        t_ms.div_euclid(self.span_ms) * self.span_ms
    }

    /// Count one processed record.
    #[inline(always)]
    pub fn add(&mut self, t_ms: i64) {
        // Most records fall in the newest bucket: count them inline, without a division.
        if let Some((newest, slot)) = self.newest {
            if t_ms >= newest && t_ms.checked_sub(newest).is_some_and(|d| d < self.span_ms) {
                self.slots[slot] += 1;
                self.window_sum += 1;
                return;
            }
        }
        self.add_elsewhere(t_ms);
    }

    /// [`BucketDiagnostics::add`] for a record outside the newest bucket (or the first one).
    #[inline(never)]
    fn add_elsewhere(&mut self, t_ms: i64) {
        let start = self.bucket_start(t_ms);
        let size = self.slots.len();
        let (newest, newest_slot) = match self.newest {
            Some(n) => n,
            None => {
                self.oldest = (start, 0);
                self.newest = Some((start, 0));
                (start, 0)
            }
        };
        if start > newest {
            let steps = (start - newest) / self.span_ms;
            if steps > self.max_walk {
                // After `size` steps the window holds only empty buckets, and every further
                // step finishes one empty bucket: count those arithmetically.
                for _ in 0..size {
                    self.advance();
                }
                self.skip_empty(steps - 2 * size as i64);
            }
            while start > self.newest.map_or(start, |n| n.0) {
                self.advance();
            }
        }
        let (newest, newest_slot) = self.newest.unwrap_or((newest, newest_slot));
        let offset = (start - newest) / self.span_ms; // <= 0: within the window or before it
        let slot = (newest_slot as i64 + offset).rem_euclid(size as i64) as usize;
        if start < self.oldest.0 {
            // Allowed in by the latency, before the window's oldest bucket. While the ring has
            // room (early in a session), the window reaches back to it, as in Elasticsearch, and
            // the buckets in between are empty (their slots have never been used). Otherwise (a
            // latency longer than the window) its bucket has left the window: there is no slot
            // to count it in, and ignoring it keeps the window's average true.
            if -offset >= size as i64 {
                return;
            }
            self.oldest = (start, slot);
        }
        self.slots[slot] += 1;
        self.window_sum += 1;
    }

    /// Open the next bucket; when the ring is full its oldest bucket is finished first.
    fn advance(&mut self) {
        let size = self.slots.len();
        let (newest, newest_slot) = self.newest.expect("advance needs a window");
        let next = (newest_slot + 1) % size;
        if next == self.oldest.1 {
            self.finish(self.oldest.0, self.slots[next]);
            self.window_sum -= self.slots[next];
            self.oldest = (self.oldest.0 + self.span_ms, (self.oldest.1 + 1) % size);
        }
        self.slots[next] = 0;
        self.newest = Some((newest + self.span_ms, next));
    }

    /// Slide over `n` buckets while the full window holds only empty ones.
    fn skip_empty(&mut self, n: i64) {
        if n <= 0 {
            return;
        }
        let size = self.slots.len() as i64;
        let (newest, newest_slot) = self.newest.expect("skip needs a window");
        self.pending.buckets += n as u64;
        self.pending.empty += n as u64;
        let last_start = self.oldest.0 + (n - 1) * self.span_ms;
        self.latest_empty_start = Some(last_start);
        self.last_finished_start = Some(last_start);
        self.oldest = (self.oldest.0 + n * self.span_ms, ((self.oldest.1 as i64 + n) % size) as usize);
        self.newest = Some((newest + n * self.span_ms, ((newest_slot as i64 + n) % size) as usize));
    }

    fn finish(&mut self, start: i64, count: u64) {
        if self.last_finished_start.is_some_and(|last| start <= last) {
            return;
        }
        self.last_finished_start = Some(start);
        self.pending.buckets += 1;
        if count == 0 {
            self.pending.empty += 1;
            self.latest_empty_start = Some(start);
        } else {
            let newest = self.newest.map_or(start, |n| n.0);
            let buckets = ((newest - self.oldest.0) / self.span_ms + 1) as f64;
            let avg = self.window_sum as f64 / buckets;
            if avg.ln() - (count as f64).ln() > 2.0 {
                self.pending.sparse += 1;
                self.latest_sparse_start = Some(start);
            }
        }
    }

    /// End of request: finish every bucket in the window except the newest.
    pub fn flush(&mut self) {
        let Some((newest, _)) = self.newest else { return };
        let size = self.slots.len();
        let (mut start, mut slot) = self.oldest;
        // Buckets up to the last one finished would be skipped by `finish`: start after them.
        // Usually that is the bucket before the newest (small requests flush one bucket after
        // another), so this walks nothing instead of the whole window.
        if let Some(last) = self.last_finished_start.filter(|&l| l >= start) {
            if last >= newest {
                return;
            }
            // Fewer than `size` buckets: `start <= last < newest` lie in the window.
            let skip = (last - start) / self.span_ms + 1;
            start += skip * self.span_ms;
            slot = (slot + skip as usize) % size;
        }
        while start < newest {
            self.finish(start, self.slots[slot]);
            start += self.span_ms;
            slot = (slot + 1) % size;
        }
    }

    pub fn take_pending(&mut self) -> Finished {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn feed(d: &mut BucketDiagnostics, hours: &[i64]) {
        for h in hours {
            d.add(h * H + 1);
        }
    }

    #[test]
    fn the_current_bucket_is_never_reported() {
        let mut d = BucketDiagnostics::new(H, 0);
        feed(&mut d, &[0, 0, 1, 1, 2]);
        d.flush();
        assert_eq!(d.take_pending(), Finished { buckets: 2, empty: 0, sparse: 0 });
        d.flush();
        assert_eq!(d.take_pending(), Finished::default(), "each bucket is reported once");
        feed(&mut d, &[2, 3]);
        d.flush();
        assert_eq!(d.take_pending(), Finished { buckets: 1, empty: 0, sparse: 0 });
    }

    #[test]
    fn gaps_are_empty_buckets() {
        let mut d = BucketDiagnostics::new(H, 0);
        feed(&mut d, &[0, 5]);
        d.flush();
        assert_eq!(d.take_pending(), Finished { buckets: 5, empty: 4, sparse: 0 });
        assert_eq!(d.latest_empty_start, Some(4 * H));
    }

    #[test]
    fn a_long_gap_is_counted_without_walking_it() {
        let mut d = BucketDiagnostics::new(1000, 0);
        d.add(0);
        d.add(1_000_000_000_000); // a billion buckets later
        d.flush();
        let p = d.take_pending();
        assert_eq!(p.buckets, 1_000_000_000);
        assert_eq!(p.empty, 999_999_999);
        assert_eq!(d.latest_empty_start, Some(999_999_999_000));
    }

    #[test]
    fn skipping_a_gap_equals_walking_it() {
        for gap in [1i64, 9, 10, 11, 39, 40, 41, 45, 77, 200] {
            for latency in [0i64, 15_000] {
                let mut fast = BucketDiagnostics::new(1000, latency);
                let mut slow = BucketDiagnostics::new(1000, latency);
                slow.max_walk = i64::MAX;
                for t in [0, 500, 1500, 2500, 2600, 4100, 4100 + gap * 1000, 4200 + gap * 1000, 9000 + gap * 1000] {
                    fast.add(t);
                    slow.add(t);
                }
                fast.flush();
                slow.flush();
                assert_eq!(fast.take_pending(), slow.take_pending(), "gap {gap}");
                assert_eq!(fast.latest_empty_start, slow.latest_empty_start);
                assert_eq!(fast.latest_sparse_start, slow.latest_sparse_start);
                assert_eq!(fast.newest, slow.newest);
                assert_eq!(fast.slots, slow.slots);
            }
        }
    }

    #[test]
    fn a_late_record_before_the_first_bucket_reaches_the_window_back() {
        // span 5 s, latency 10 s: 95 s is accepted after 100 s, and its bucket is finished.
        let mut d = BucketDiagnostics::new(5000, 10_000);
        d.add(100_000);
        d.add(95_000);
        d.flush();
        assert_eq!(d.take_pending(), Finished { buckets: 1, empty: 0, sparse: 0 });
        // Reopened (seeded at 205 s), span 10 s, latency 30 s: 185 s reaches back to bucket 180,
        // the bucket between is empty, and the seed's bucket is finished once 215 s comes.
        let mut d = BucketDiagnostics::new(10_000, 30_000);
        for t in [205_000, 185_000, 215_000] {
            d.add(t);
        }
        d.flush();
        assert_eq!(d.take_pending(), Finished { buckets: 3, empty: 1, sparse: 0 });
        assert_eq!(d.latest_empty_start, Some(190_000));
        // Not past a full ring: 10 slots, so a bucket 10 before the newest has no slot (a
        // latency of 10 spans lets it in), while one 9 before it has.
        let mut d = BucketDiagnostics::new(1000, 10_000);
        d.add(30_000);
        d.add(20_999);
        d.add(21_000);
        d.flush();
        assert_eq!(d.take_pending(), Finished { buckets: 9, empty: 8, sparse: 0 });
    }

    #[test]
    fn sparse_is_ln_avg_minus_ln_count_above_two() {
        let mut d = BucketDiagnostics::new(H, 0);
        // 9 buckets of 100 records, then one of 1, then more buckets to push it out.
        for h in 0..9 {
            for _ in 0..100 {
                d.add(h * H);
            }
        }
        d.add(9 * H);
        for h in 10..12 {
            for _ in 0..100 {
                d.add(h * H);
            }
        }
        d.flush();
        let p = d.take_pending();
        assert_eq!(p.sparse, 1);
        assert_eq!(d.latest_sparse_start, Some(9 * H));
    }
}
