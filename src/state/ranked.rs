//! [`RankedSet`]: a sorted set that also answers "the element at position `i`" in
//! O(log n), for listings that page by offset without walking from the start.
//!
//! The elements live in sorted chunks of at most [`CHUNK`] (each chunk's elements precede
//! the next chunk's), with a Fenwick tree over the chunk lengths for positions. Insert and
//! remove cost O(log n + CHUNK) (a binary search over chunks, one within the chunk, a
//! memmove inside it); finding position `i` costs O(log n); iteration costs O(1) per
//! element. Memory is the elements themselves, packed: an element appended at the end
//! starts a new chunk when the last one is full (so the common case, elements arriving in
//! order, fills chunks completely); an element inserted elsewhere into a full chunk splits
//! it in halves. A set of up to [`CHUNK`] elements is one `Vec` growing as usual.

use serde::{Deserialize, Serialize};

/// Most elements in one chunk.
pub(crate) const CHUNK: usize = 512;

/// A sorted set with positional access (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct RankedSet<K> {
    chunks: Vec<Vec<K>>,
    /// Fenwick tree over `chunks[i].len()`, 1-based: `tree[j]` sums the lengths of chunks
    /// `j - lowbit(j) .. j` (0-based, half open). `tree[0]` is unused.
    tree: Vec<u32>,
    len: usize,
}

impl<K> Default for RankedSet<K> {
    fn default() -> Self {
        RankedSet {
            chunks: Vec::new(),
            tree: Vec::new(),
            len: 0,
        }
    }
}

impl<K: Ord + Copy> RankedSet<K> {
    /// A set of `sorted` (ascending, no duplicates), chunks filled completely.
    pub fn from_sorted(sorted: Vec<K>) -> Self {
        debug_assert!(sorted.windows(2).all(|w| w[0] < w[1]));
        let len = sorted.len();
        let chunks: Vec<Vec<K>> = if len <= CHUNK {
            if len == 0 {
                Vec::new()
            } else {
                vec![sorted]
            }
        } else {
            sorted.chunks(CHUNK).map(<[K]>::to_vec).collect()
        };
        let mut s = RankedSet {
            chunks,
            tree: Vec::new(),
            len,
        };
        s.rebuild();
        s
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The greatest element.
    pub fn last(&self) -> Option<&K> {
        self.chunks.last().and_then(|c| c.last())
    }

    /// The chunk that holds `k` if anything does: the first whose last element is ≥ `k`.
    fn chunk_for(&self, k: &K) -> usize {
        self.chunks
            .partition_point(|c| c.last().expect("chunks are never empty") < k)
    }

    /// Adds `k`; `false` if it was there already.
    pub fn insert(&mut self, k: K) -> bool {
        if self.chunks.is_empty() {
            self.chunks.push(vec![k]);
            self.len = 1;
            self.rebuild();
            return true;
        }
        let last = self.chunks.len() - 1;
        // The common case first: a new greatest element (a snapshot created now).
        let (ci, pos) = if self.chunks[last].last().is_some_and(|m| *m < k) {
            (last, self.chunks[last].len())
        } else {
            let ci = self.chunk_for(&k).min(last);
            match self.chunks[ci].binary_search(&k) {
                Ok(_) => return false,
                Err(pos) => (ci, pos),
            }
        };
        let c = &mut self.chunks[ci];
        self.len += 1;
        if c.len() < CHUNK {
            c.insert(pos, k);
            self.add(ci, 1);
            return true;
        }
        if ci == last && pos == c.len() {
            // Appended at the end: a new chunk, the full one stays full.
            let mut fresh = Vec::with_capacity(CHUNK);
            fresh.push(k);
            self.chunks.push(fresh);
        } else {
            let mut right = Vec::with_capacity(CHUNK);
            right.extend_from_slice(&c[CHUNK / 2..]);
            c.truncate(CHUNK / 2);
            if pos <= CHUNK / 2 {
                c.insert(pos, k);
            } else {
                right.insert(pos - CHUNK / 2, k);
            }
            self.chunks.insert(ci + 1, right);
        }
        self.rebuild();
        true
    }

    /// Removes `k`; `false` if it was not there.
    pub fn remove(&mut self, k: &K) -> bool {
        let ci = self.chunk_for(k);
        let Some(c) = self.chunks.get_mut(ci) else {
            return false;
        };
        let Ok(pos) = c.binary_search(k) else {
            return false;
        };
        c.remove(pos);
        self.len -= 1;
        let n = c.len();
        if n == 0 {
            self.chunks.remove(ci);
            self.rebuild();
        } else if n < CHUNK / 4
            && ci + 1 < self.chunks.len()
            && n + self.chunks[ci + 1].len() <= CHUNK / 2
        {
            // Merge a thin chunk with the next one so deletions do not leave a trail of
            // nearly empty chunks.
            let next = self.chunks.remove(ci + 1);
            let c = &mut self.chunks[ci];
            c.extend_from_slice(&next);
            c.shrink_to(CHUNK);
            self.rebuild();
        } else {
            self.add(ci, -1);
        }
        true
    }

    /// The number of elements less than `k`. O(log n).
    pub fn rank(&self, k: &K) -> usize {
        let ci = self.chunk_for(k);
        if ci >= self.chunks.len() {
            return self.len;
        }
        let mut before = 0usize;
        let mut j = ci;
        while j > 0 {
            before += self.tree[j] as usize;
            j &= j - 1;
        }
        before + self.chunks[ci].partition_point(|x| x < k)
    }

    /// The elements in ascending order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &K> + '_ {
        self.chunks.iter().flatten()
    }

    /// The elements from position `start` on, ascending. O(log n) to start.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = &K> + '_ {
        let (ci, off) = self.locate(start);
        self.chunks
            .get(ci)
            .map(|c| &c[off..])
            .into_iter()
            .flatten()
            .chain(self.chunks.iter().skip(ci + 1).flatten())
    }

    /// The elements from position `len - 1 - start` down, descending (`start` counts from
    /// the greatest). O(log n) to start.
    pub fn iter_rev_from(&self, start: usize) -> impl Iterator<Item = &K> + '_ {
        let (ci, end) = if start >= self.len {
            (0, 0)
        } else {
            let (ci, off) = self.locate(self.len - 1 - start);
            (ci, off + 1)
        };
        let head: &[K] = self.chunks.get(ci).map_or(&[], |c| &c[..end]);
        head.iter().rev().chain(
            self.chunks[..ci.min(self.chunks.len())]
                .iter()
                .flatten()
                .rev(),
        )
    }

    /// The chunk and offset within it of position `i` (`(chunks.len(), 0)` past the end).
    fn locate(&self, i: usize) -> (usize, usize) {
        if i >= self.len {
            return (self.chunks.len(), 0);
        }
        // Fenwick descent: the largest prefix of chunks holding at most `i` elements.
        let n = self.chunks.len();
        let mut pos = 0usize;
        let mut rest = i;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && (self.tree[next] as usize) <= rest {
                pos = next;
                rest -= self.tree[next] as usize;
            }
            step >>= 1;
        }
        (pos, rest)
    }

    fn add(&mut self, chunk: usize, delta: i32) {
        let mut j = chunk + 1;
        while j < self.tree.len() {
            self.tree[j] = self.tree[j].wrapping_add_signed(delta);
            j += j & j.wrapping_neg();
        }
    }

    /// Recomputes the Fenwick tree: O(chunks).
    fn rebuild(&mut self) {
        let n = self.chunks.len();
        self.tree.clear();
        self.tree.resize(n + 1, 0);
        for (i, c) in self.chunks.iter().enumerate() {
            let j = i + 1;
            self.tree[j] += c.len() as u32;
            let up = j + (j & j.wrapping_neg());
            if up <= n {
                let v = self.tree[j];
                self.tree[up] += v;
            }
        }
    }
}

/// Written as the plain ascending sequence of its elements.
impl<K: Serialize> Serialize for RankedSet<K> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.len))?;
        for k in self.chunks.iter().flatten() {
            seq.serialize_element(k)?;
        }
        seq.end()
    }
}

/// Read back from the ascending sequence; an unsorted or repeating one is refused.
impl<'de, K: Deserialize<'de> + Ord + Copy> Deserialize<'de> for RankedSet<K> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Vec::<K>::deserialize(d)?;
        if v.windows(2).any(|w| w[0] >= w[1]) {
            return Err(serde::de::Error::custom(
                "a ranked set is not strictly ascending",
            ));
        }
        Ok(RankedSet::from_sorted(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn check(s: &RankedSet<u32>, model: &BTreeSet<u32>) {
        let want: Vec<u32> = model.iter().copied().collect();
        assert_eq!(s.len(), want.len());
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), want);
        assert_eq!(s.last(), want.last());
        for start in [
            0,
            1,
            7,
            want.len() / 2,
            want.len().saturating_sub(1),
            want.len(),
            want.len() + 3,
        ] {
            let got: Vec<u32> = s.iter_from(start).copied().collect();
            assert_eq!(
                got,
                want.iter().skip(start).copied().collect::<Vec<_>>(),
                "from {start}"
            );
            let got: Vec<u32> = s.iter_rev_from(start).copied().collect();
            assert_eq!(
                got,
                want.iter().rev().skip(start).copied().collect::<Vec<_>>(),
                "rev from {start}"
            );
        }
        for k in [0u32, 5, 10, 12_345, 39_999, 40_000, u32::MAX] {
            assert_eq!(s.rank(&k), model.range(..k).count(), "rank of {k}");
        }
        for c in &s.chunks {
            assert!(!c.is_empty() && c.len() <= CHUNK);
        }
    }

    #[test]
    fn matches_a_btreeset() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut s = RankedSet::default();
        let mut model = BTreeSet::new();
        // Appends in order, then random inserts and removes, then removal of most.
        for i in 0..3000u32 {
            assert!(s.insert(i * 10));
            model.insert(i * 10);
        }
        check(&s, &model);
        for _ in 0..20_000 {
            let k = rng.gen_range(0..40_000u32);
            if rng.gen_bool(0.6) {
                assert_eq!(s.insert(k), model.insert(k));
            } else {
                assert_eq!(s.remove(&k), model.remove(&k));
            }
        }
        check(&s, &model);
        let all: Vec<u32> = model.iter().copied().collect();
        for k in all.iter().filter(|k| *k % 7 != 0) {
            assert!(s.remove(k));
            model.remove(k);
        }
        check(&s, &model);
        let t = RankedSet::from_sorted(model.iter().copied().collect());
        check(&t, &model);
        for k in model.clone() {
            assert!(s.remove(&k));
            model.remove(&k);
        }
        check(&s, &model);
        assert!(s.chunks.is_empty());
    }

    #[test]
    fn appends_in_order_fill_chunks() {
        let mut s = RankedSet::default();
        for i in 0..(CHUNK as u32 * 10 + 3) {
            s.insert(i);
        }
        assert_eq!(s.chunks.len(), 11);
        assert!(s.chunks[..10].iter().all(|c| c.len() == CHUNK));
    }
}
