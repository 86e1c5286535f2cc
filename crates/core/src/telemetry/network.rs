//! The static side of detection: which devices hang off which element, and which
//! customers each device serves. Built once from the book; never changes while detecting.

use crate::topology::{ElementIdx, Topology};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::Range;

/// "No element", "no incident", "no interval": `u32::MAX` keeps the per-device record small.
pub(crate) const NONE: u32 = u32::MAX;

/// One customer as detection sees it: the element their service hangs off and their device.
#[derive(Debug, Clone, Copy)]
pub struct Attachment<'a> {
    /// The caller's index of the customer; detection hands it back, never interprets it.
    pub customer: u32,
    pub element: ElementIdx,
    pub device: Option<&'a str>,
}

/// Devices are numbered in the pre-order of their element, so the devices at or below an
/// element are one contiguous range of device numbers, like customers in `ImpactIndex`.
#[derive(Debug)]
pub struct Network {
    pub(crate) parent: Vec<u32>,
    pub(crate) pre: Vec<u32>,
    pub(crate) subtree_end: Vec<u32>,
    /// The element at each pre-order position.
    pub(crate) element_at_pre: Vec<u32>,
    /// Devices at or below each element.
    pub(crate) devices_below: Vec<u32>,
    /// Customers with no telemetry device at or below each element (presumed affected).
    pub(crate) deviceless_below: Vec<u32>,
    ids: Vec<DeviceKey>,
    /// foldhash, seeded at random per process: the stored keys are the book's, and a
    /// lookup is most of the cost of taking an event (SipHash was a fifth of it).
    by_id: HashMap<DeviceKey, u32, foldhash::fast::RandomState>,
    pub(crate) device_element: Vec<u32>,
    /// Pre-order number of each device's element: ascending, by construction.
    device_pre: Vec<u32>,
    customers_start: Vec<u32>,
    customers: Vec<u32>,
    /// Customers without a device, by the pre-order number of their element.
    deviceless: Vec<(u32, u32)>,
}

impl Network {
    /// Several customers may share one device (a building's ONT): the device takes the
    /// element of the first of them, by the caller's index.
    pub fn build<'a>(topology: &Topology, attachments: impl IntoIterator<Item = Attachment<'a>>) -> Network {
        let n = topology.len();
        let mut with_device: Vec<(&str, u32, u32)> = Vec::new();
        let mut deviceless: Vec<(u32, u32)> = Vec::new();
        for a in attachments {
            match a.device {
                Some(d) => with_device.push((d, a.customer, a.element)),
                None => deviceless.push((topology.preorder(a.element), a.customer)),
            }
        }
        deviceless.sort_unstable();
        with_device.sort_unstable();
        // One entry per device: (pre-order of its element, id, its customers).
        let mut devices: Vec<(u32, &str, u32, Vec<u32>)> = Vec::new();
        for (id, customer, element) in with_device {
            match devices.last_mut() {
                Some(last) if last.1 == id => last.3.push(customer),
                _ => devices.push((topology.preorder(element), id, element, vec![customer])),
            }
        }
        devices.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut net = Network {
            parent: (0..n as u32).map(|e| topology.parent(e).unwrap_or(NONE)).collect(),
            pre: (0..n as u32).map(|e| topology.preorder(e)).collect(),
            subtree_end: (0..n as u32).map(|e| topology.subtree(e).end).collect(),
            element_at_pre: vec![0; n],
            devices_below: vec![0; n],
            deviceless_below: vec![0; n],
            ids: Vec::with_capacity(devices.len()),
            by_id: HashMap::with_capacity_and_hasher(devices.len(), Default::default()),
            device_element: Vec::with_capacity(devices.len()),
            device_pre: Vec::with_capacity(devices.len()),
            customers_start: Vec::with_capacity(devices.len() + 1),
            customers: Vec::new(),
            deviceless,
        };
        for e in 0..n {
            net.element_at_pre[net.pre[e] as usize] = e as u32;
        }
        for (i, (pre, id, element, customers)) in devices.into_iter().enumerate() {
            let id = DeviceKey::new(id);
            net.by_id.insert(id.clone(), i as u32);
            net.ids.push(id);
            net.device_element.push(element);
            net.device_pre.push(pre);
            net.customers_start.push(net.customers.len() as u32);
            net.customers.extend(customers);
        }
        net.customers_start.push(net.customers.len() as u32);
        for e in 0..n as u32 {
            let sub = net.pre[e as usize]..net.subtree_end[e as usize];
            net.devices_below[e as usize] = range_of(&net.device_pre, &sub).len() as u32;
            net.deviceless_below[e as usize] = (net.deviceless.partition_point(|p| p.0 < sub.end)
                - net.deviceless.partition_point(|p| p.0 < sub.start))
                as u32;
        }
        net
    }

    pub fn device_count(&self) -> usize {
        self.ids.len()
    }

    pub fn device_index(&self, id: &str) -> Option<u32> {
        self.by_id.get(id.as_bytes()).copied()
    }

    pub fn device_id(&self, device: u32) -> &str {
        self.ids[device as usize].as_str()
    }

    pub fn device_element(&self, device: u32) -> ElementIdx {
        self.device_element[device as usize]
    }

    /// The caller's customer indices served by `device`.
    pub fn customers_of(&self, device: u32) -> &[u32] {
        let d = device as usize;
        &self.customers[self.customers_start[d] as usize..self.customers_start[d + 1] as usize]
    }

    /// Devices at or below `element`.
    pub fn devices_under(&self, element: ElementIdx) -> Range<u32> {
        let sub = self.subtree(element);
        let r = range_of(&self.device_pre, &sub);
        r.start as u32..r.end as u32
    }

    /// Customers without a device at or below `element`.
    pub fn deviceless_under(&self, element: ElementIdx) -> impl Iterator<Item = u32> + '_ {
        let sub = self.subtree(element);
        let r = self.deviceless.partition_point(|p| p.0 < sub.start)
            ..self.deviceless.partition_point(|p| p.0 < sub.end);
        self.deviceless[r].iter().map(|p| p.1)
    }

    pub(crate) fn subtree(&self, element: ElementIdx) -> Range<u32> {
        self.pre[element as usize]..self.subtree_end[element as usize]
    }

    pub(crate) fn is_at_or_below(&self, element: ElementIdx, ancestor: ElementIdx) -> bool {
        self.subtree(ancestor).contains(&self.pre[element as usize])
    }

    /// Memory held for the devices, in bytes (ids, index, per-device arrays), so the
    /// benchmark can report bytes per device next to the resident set.
    pub fn device_bytes(&self) -> usize {
        let key = std::mem::size_of::<DeviceKey>();
        let heap: usize =
            self.ids.iter().map(|k| if let DeviceKey::Heap(b) = k { 2 * b.len() } else { 0 }).sum();
        let index = self.by_id.capacity() * (std::mem::size_of::<(DeviceKey, u32)>() + 1);
        heap + index
            + self.ids.capacity() * key
            + (self.device_element.capacity() + self.device_pre.capacity()) * 4
            + (self.customers_start.capacity() + self.customers.capacity()) * 4
    }
}

/// Positions in `sorted` of the values inside `range`.
fn range_of(sorted: &[u32], range: &Range<u32>) -> Range<usize> {
    sorted.partition_point(|&p| p < range.start)..sorted.partition_point(|&p| p < range.end)
}

/// A device id, kept inline when it is short (most are: `MODEM-0811666`), so that a lookup
/// compares bytes inside the hash table instead of following a pointer to them: with a
/// million devices, each pointer followed is a likely cache miss per event.
#[derive(Debug, Clone)]
enum DeviceKey {
    Inline { len: u8, bytes: [u8; INLINE_MAX] },
    Heap(Box<[u8]>),
}

const INLINE_MAX: usize = 22;

impl DeviceKey {
    fn new(id: &str) -> DeviceKey {
        let b = id.as_bytes();
        if b.len() <= INLINE_MAX {
            let mut bytes = [0; INLINE_MAX];
            bytes[..b.len()].copy_from_slice(b);
            DeviceKey::Inline { len: b.len() as u8, bytes }
        } else {
            DeviceKey::Heap(b.into())
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.borrow()).expect("made from a str")
    }
}

impl Borrow<[u8]> for DeviceKey {
    fn borrow(&self) -> &[u8] {
        match self {
            DeviceKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            DeviceKey::Heap(b) => b,
        }
    }
}

/// Hashes and compares as the bytes it holds, as `Borrow` requires.
impl Hash for DeviceKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        <[u8] as Hash>::hash(self.borrow(), state);
    }
}

impl PartialEq for DeviceKey {
    fn eq(&self, other: &Self) -> bool {
        <Self as Borrow<[u8]>>::borrow(self) == <Self as Borrow<[u8]>>::borrow(other)
    }
}

impl Eq for DeviceKey {}
