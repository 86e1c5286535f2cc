//! The provider's network as a tree of elements.
//!
//! Elements are numbered in pre-order once, when the tree is built. The subtree of an
//! element is then a contiguous range of pre-order numbers, so "is this customer's element
//! at or below the failed element?" is two integer comparisons, and "every customer below
//! this element" is a contiguous slice of customers sorted by pre-order (see `impact`).

use std::collections::HashMap;
use std::ops::Range;

/// One element as imported: kinds are free text (region, hub, node, tap, OLT...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub id: String,
    pub parent_id: Option<String>,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("element {0:?} appears more than once")]
    DuplicateId(String),
    #[error("element {element:?} has parent {parent:?}, which is not an element")]
    UnknownParent { element: String, parent: String },
    #[error("elements {0:?} form a cycle: an element cannot be its own ancestor")]
    Cycle(Vec<String>),
}

/// An element's position: its index in `Topology::elements`.
pub type ElementIdx = u32;

#[derive(Debug, Clone, Default)]
pub struct Topology {
    elements: Vec<Element>,
    by_id: HashMap<String, ElementIdx>,
    parent: Vec<Option<ElementIdx>>,
    /// Pre-order number of each element.
    pre: Vec<u32>,
    /// One past the last pre-order number in each element's subtree.
    subtree_end: Vec<u32>,
}

impl Topology {
    /// Builds the tree, reporting every problem at once (duplicates, unknown parents,
    /// cycles) rather than the first.
    pub fn build(elements: Vec<Element>) -> Result<Topology, Vec<TopologyError>> {
        let mut errors = Vec::new();
        let mut by_id = HashMap::with_capacity(elements.len());
        for (i, e) in elements.iter().enumerate() {
            if by_id.insert(e.id.clone(), i as ElementIdx).is_some() {
                errors.push(TopologyError::DuplicateId(e.id.clone()));
            }
        }
        let mut parent = Vec::with_capacity(elements.len());
        for e in &elements {
            parent.push(match &e.parent_id {
                None => None,
                Some(p) => match by_id.get(p) {
                    Some(&pi) => Some(pi),
                    None => {
                        errors
                            .push(TopologyError::UnknownParent { element: e.id.clone(), parent: p.clone() });
                        None
                    }
                },
            });
        }
        // An unknown parent was left out (the element counts as a root here), so cycles
        // among the rest are found in the same pass: every problem is listed at once.
        let (pre, subtree_end) = number_preorder(&parent);
        errors.extend(find_cycles(&elements, &parent, &pre));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Topology { elements, by_id, parent, pre, subtree_end })
    }

    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    pub fn index_of(&self, id: &str) -> Option<ElementIdx> {
        self.by_id.get(id).copied()
    }

    pub fn element(&self, idx: ElementIdx) -> &Element {
        &self.elements[idx as usize]
    }

    pub fn elements(&self) -> &[Element] {
        &self.elements
    }

    pub fn parent(&self, idx: ElementIdx) -> Option<ElementIdx> {
        self.parent[idx as usize]
    }

    pub fn preorder(&self, idx: ElementIdx) -> u32 {
        self.pre[idx as usize]
    }

    /// Pre-order numbers of the element and everything below it.
    pub fn subtree(&self, idx: ElementIdx) -> Range<u32> {
        self.pre[idx as usize]..self.subtree_end[idx as usize]
    }

    pub fn is_at_or_below(&self, idx: ElementIdx, ancestor: ElementIdx) -> bool {
        self.subtree(ancestor).contains(&self.preorder(idx))
    }

    /// Element indices from `idx` up to its root, `idx` first.
    pub fn ancestry(&self, idx: ElementIdx) -> impl Iterator<Item = ElementIdx> + '_ {
        std::iter::successors(Some(idx), |&i| self.parent(i))
    }
}

/// Iterative depth-first numbering from every root; elements on a cycle are never reached
/// and keep `u32::MAX`.
fn number_preorder(parent: &[Option<ElementIdx>]) -> (Vec<u32>, Vec<u32>) {
    let n = parent.len();
    let mut children: Vec<Vec<ElementIdx>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (i, p) in parent.iter().enumerate() {
        match p {
            Some(p) => children[*p as usize].push(i as ElementIdx),
            None => roots.push(i as ElementIdx),
        }
    }
    let mut pre = vec![u32::MAX; n];
    let mut end = vec![u32::MAX; n];
    let mut next = 0u32;
    // (element, entered): on exit, the subtree end is the next number to hand out.
    let mut stack: Vec<(ElementIdx, bool)> = roots.iter().rev().map(|&r| (r, false)).collect();
    while let Some((e, entered)) = stack.pop() {
        if entered {
            end[e as usize] = next;
            continue;
        }
        pre[e as usize] = next;
        next += 1;
        stack.push((e, true));
        stack.extend(children[e as usize].iter().rev().map(|&c| (c, false)));
    }
    (pre, end)
}

/// Groups the elements that were never numbered into the cycles that trap them.
fn find_cycles(elements: &[Element], parent: &[Option<ElementIdx>], pre: &[u32]) -> Vec<TopologyError> {
    let mut reported = vec![false; elements.len()];
    let mut errors = Vec::new();
    for start in 0..elements.len() {
        if pre[start] != u32::MAX || reported[start] {
            continue;
        }
        // Walk up until an element repeats: that element is on the cycle.
        let mut seen = std::collections::HashSet::new();
        let mut e = start as ElementIdx;
        while seen.insert(e) {
            match parent[e as usize] {
                Some(p) => e = p,
                None => break,
            }
        }
        if reported[e as usize] {
            continue;
        }
        let mut cycle = Vec::new();
        let first = e;
        loop {
            reported[e as usize] = true;
            cycle.push(elements[e as usize].id.clone());
            e = parent[e as usize].expect("a cycle has parents all the way round");
            if e == first {
                break;
            }
        }
        cycle.sort();
        errors.push(TopologyError::Cycle(cycle));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(id: &str, parent: Option<&str>) -> Element {
        Element { id: id.into(), parent_id: parent.map(Into::into), kind: "node".into(), name: id.into() }
    }

    #[test]
    fn subtrees_are_preorder_ranges() {
        let t = Topology::build(vec![
            el("root", None),
            el("hub1", Some("root")),
            el("n1", Some("hub1")),
            el("hub2", Some("root")),
            el("n2", Some("hub2")),
            el("n3", Some("hub1")),
        ])
        .unwrap();
        let i = |id| t.index_of(id).unwrap();
        assert!(t.is_at_or_below(i("n1"), i("hub1")));
        assert!(t.is_at_or_below(i("n3"), i("hub1")));
        assert!(t.is_at_or_below(i("hub1"), i("hub1")));
        assert!(!t.is_at_or_below(i("n2"), i("hub1")));
        assert!(!t.is_at_or_below(i("hub1"), i("n1")));
        assert_eq!(t.subtree(i("root")).len(), 6);
        assert_eq!(t.subtree(i("hub1")).len(), 3);
        let up: Vec<_> = t.ancestry(i("n3")).map(|e| t.element(e).id.as_str()).collect();
        assert_eq!(up, ["n3", "hub1", "root"]);
    }

    #[test]
    fn reports_every_problem() {
        let errs = Topology::build(vec![el("a", None), el("a", None), el("b", Some("zz"))]).unwrap_err();
        assert_eq!(
            errs,
            vec![
                TopologyError::DuplicateId("a".into()),
                TopologyError::UnknownParent { element: "b".into(), parent: "zz".into() }
            ]
        );
    }

    #[test]
    fn an_unknown_parent_and_a_cycle_are_reported_together() {
        let errs =
            Topology::build(vec![el("b", Some("zz")), el("x", Some("y")), el("y", Some("x"))]).unwrap_err();
        assert_eq!(
            errs,
            vec![
                TopologyError::UnknownParent { element: "b".into(), parent: "zz".into() },
                TopologyError::Cycle(vec!["x".into(), "y".into()]),
            ]
        );
    }

    #[test]
    fn finds_cycles() {
        let errs = Topology::build(vec![
            el("root", None),
            el("x", Some("y")),
            el("y", Some("x")),
            el("below", Some("x")),
            el("self", Some("self")),
        ])
        .unwrap_err();
        assert_eq!(
            errs,
            vec![
                TopologyError::Cycle(vec!["x".into(), "y".into()]),
                TopologyError::Cycle(vec!["self".into()])
            ]
        );
    }
}
