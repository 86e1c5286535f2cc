//! Who an incident affects.
//!
//! Customers are kept sorted by the pre-order number of their element, so every customer
//! attached at or below an element is one contiguous slice, found by two binary searches.
//! An incident on several elements is the union of their slices.

use crate::topology::{ElementIdx, Topology};
use std::ops::Range;

/// Active customers ordered by the pre-order number of the element they hang off.
#[derive(Debug, Clone, Default)]
pub struct ImpactIndex {
    /// Pre-order number of each customer's element, ascending.
    preorders: Vec<u32>,
    /// Position of each entry in the caller's customer list.
    customers: Vec<u32>,
}

impl ImpactIndex {
    /// `attached` gives, for each active customer (by the caller's index), its element.
    pub fn build(topology: &Topology, attached: impl IntoIterator<Item = (u32, ElementIdx)>) -> Self {
        let mut pairs: Vec<(u32, u32)> =
            attached.into_iter().map(|(customer, element)| (topology.preorder(element), customer)).collect();
        pairs.sort_unstable();
        let (preorders, customers) = pairs.into_iter().unzip();
        ImpactIndex { preorders, customers }
    }

    pub fn len(&self) -> usize {
        self.customers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    /// Positions (into this index) of the customers at or below any of `elements`,
    /// as sorted, disjoint ranges.
    pub fn affected_ranges(&self, topology: &Topology, elements: &[ElementIdx]) -> Vec<Range<usize>> {
        let mut ranges: Vec<Range<usize>> = elements
            .iter()
            .map(|&e| {
                let sub = topology.subtree(e);
                self.preorders.partition_point(|&p| p < sub.start)
                    ..self.preorders.partition_point(|&p| p < sub.end)
            })
            .filter(|r| !r.is_empty())
            .collect();
        ranges.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged
    }

    /// The caller's customer indices at or below any of `elements`, in index order.
    pub fn affected(&self, topology: &Topology, elements: &[ElementIdx]) -> Vec<u32> {
        self.affected_ranges(topology, elements)
            .into_iter()
            .flat_map(|r| self.customers[r].iter().copied())
            .collect()
    }

    /// The caller's customer index at position `pos` of this index.
    pub fn customer_at(&self, pos: usize) -> u32 {
        self.customers[pos]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Element;

    fn el(id: &str, parent: Option<&str>) -> Element {
        Element { id: id.into(), parent_id: parent.map(Into::into), kind: "node".into(), name: id.into() }
    }

    #[test]
    fn affected_are_at_or_below_and_counted_once() {
        let t = Topology::build(vec![
            el("root", None),
            el("hub1", Some("root")),
            el("n1", Some("hub1")),
            el("n2", Some("hub1")),
            el("hub2", Some("root")),
            el("n3", Some("hub2")),
        ])
        .unwrap();
        let i = |id| t.index_of(id).unwrap();
        // customer k attached to element...
        let attached =
            [(0, i("n1")), (1, i("n2")), (2, i("n3")), (3, i("hub1")), (4, i("n1")), (5, i("root"))];
        let index = ImpactIndex::build(&t, attached);
        let mut hub1 = index.affected(&t, &[i("hub1")]);
        hub1.sort();
        assert_eq!(hub1, vec![0, 1, 3, 4]);
        let mut both = index.affected(&t, &[i("n1"), i("hub1"), i("n3")]);
        both.sort();
        assert_eq!(both, vec![0, 1, 2, 3, 4]);
        assert_eq!(index.affected(&t, &[i("root")]).len(), 6);
        assert!(index.affected(&t, &[]).is_empty());
    }
}
