//! Outage detection from device telemetry.
//!
//! Modems, ONTs and meters report `offline` and `online`. Each device's report becomes a
//! confirmed outage after a hold-down (at once for a dying gasp); an element is out when
//! enough of the devices at or below it are confirmed offline; an incident opens at each
//! element that is out with no ancestor out, and widens (merging the incidents below) when
//! an ancestor crosses its threshold. Every device keeps its own offline intervals, so each
//! customer's downtime is their own. Pure: the caller passes events and the clock in.
//!
//! - [`event`]: the NDJSON event format.
//! - [`config`]: hold-down, thresholds per element kind, time bounds.
//! - [`network`]: devices and customers by element, built once from the book.
//! - [`detector`]: the engine.

pub mod config;
pub mod detector;
pub mod event;
pub mod network;

pub use config::{DetectionConfig, Fraction, Threshold};
pub use detector::{DetectedIncident, Detection, Detector, Downtime, Refusal, Stats, admit};
pub use event::{DeviceEvent, DeviceState, EventError};
pub use network::{Attachment, Network};

#[cfg(test)]
mod tests;
